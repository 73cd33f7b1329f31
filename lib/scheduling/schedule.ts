import { CronExpressionParser } from 'cron-parser';

/** A job's schedule as stored in Redis and compared between replicas. */
export interface ScheduleSpec {
  cron?: string;
  timeZone?: string;
  every?: number;
  jitter: number;
}

/** One computed fire: `base` follows the schedule exactly, `due` adds this fire's jitter. */
export interface NextFire {
  base: number;
  due: number;
}

/**
 * Schedule arithmetic, kept out of Redis: the replica that claims a fire computes the next one
 * and hands it to the claim script, which only accepts it if the schedule revision it was
 * computed from is still current.
 *
 * Jitter is added to `due` but never to `base`, so it does not accumulate: an `every: '1m'` job
 * with jitter keeps its one-minute cadence.
 */
export class Schedule {
  constructor(readonly spec: ScheduleSpec) {}

  /** The first base strictly after `now` that follows `previousBase` (or starts from `now`). */
  nextBase(previousBase: number | null, now: number): number {
    const { every } = this.spec;
    if (every !== undefined) {
      if (previousBase === null || previousBase > now) return now + every;
      // Keep the cadence of previousBase; when late by several periods, fire once, not once per missed period.
      return previousBase + every * (Math.floor((now - previousBase) / every) + 1);
    }
    return this.cronAfter(Math.max(previousBase ?? now, now));
  }

  /** The length of the period that starts at `base`, which jitter is a fraction of. */
  periodAt(base: number): number {
    return this.spec.every ?? this.cronAfter(base) - base;
  }

  next(previousBase: number | null, now: number, random: () => number = Math.random): NextFire {
    const base = this.nextBase(previousBase, now);
    const jitter = this.spec.jitter > 0 ? Math.floor(random() * this.spec.jitter * this.periodAt(base)) : 0;
    return { base, due: base + jitter };
  }

  /**
   * The next `count` bases after `from`, without jitter (it is drawn when each fire is claimed).
   * One cron iterator for all of them, not one parse per step.
   */
  preview(count: number, from: number): number[] {
    const bases: number[] = [];
    const { every } = this.spec;
    if (every !== undefined) {
      for (let i = 1; i <= count; i++) bases.push(from + every * i);
      return bases;
    }
    const fires = CronExpressionParser.parse(this.spec.cron!, { currentDate: new Date(from), tz: this.spec.timeZone });
    for (let i = 0; i < count && fires.hasNext(); i++) bases.push(fires.next().getTime());
    return bases;
  }

  /**
   * How many bases lie strictly after `after` (a base of this schedule) and at or before `upTo`.
   * Exact for `every` (arithmetic); a cron schedule is walked, at most `budget` steps: past that
   * the count is a lower bound (`exact: false`), so that a per-second cron down for a week costs
   * a bounded time (a step takes 20–400 µs).
   */
  countBases(after: number, upTo: number, budget = 10_000): { count: number; exact: boolean } {
    if (upTo <= after) return { count: 0, exact: true };
    const { every } = this.spec;
    if (every !== undefined) return { count: Math.floor((upTo - after) / every), exact: true };
    const fires = CronExpressionParser.parse(this.spec.cron!, { currentDate: new Date(after), tz: this.spec.timeZone });
    let count = 0;
    while (count < budget && fires.hasNext()) {
      if (fires.next().getTime() > upTo) return { count, exact: true };
      count++;
    }
    return { count, exact: !fires.hasNext() };
  }

  /**
   * The latest `count` bases strictly after `after` (a base of this schedule) and at or before
   * `upTo`, oldest first: walked backwards from `upTo`, so its cost is `count` steps whatever
   * the distance to `after`.
   */
  latestBases(after: number, upTo: number, count: number): number[] {
    if (upTo <= after || count <= 0) return [];
    const { every } = this.spec;
    if (every !== undefined) {
      const last = Math.floor((upTo - after) / every);
      const bases: number[] = [];
      for (let k = Math.max(1, last - count + 1); k <= last; k++) bases.push(after + every * k);
      return bases;
    }
    // prev() answers the latest fire strictly before currentDate: 1 ms later takes `upTo` itself.
    const fires = CronExpressionParser.parse(this.spec.cron!, { currentDate: new Date(upTo + 1), tz: this.spec.timeZone });
    const bases: number[] = [];
    while (bases.length < count && fires.hasPrev()) {
      const base = fires.prev().getTime();
      if (base <= after) break;
      bases.push(base);
    }
    return bases.reverse();
  }

  private cronAfter(after: number): number {
    const expression = CronExpressionParser.parse(this.spec.cron!, {
      currentDate: new Date(after),
      tz: this.spec.timeZone,
    });
    return expression.next().getTime();
  }
}
