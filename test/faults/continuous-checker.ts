import type { HistoryLine, JobLine, NemesisLine, ScenarioLine, TickLine } from './history';
import { groupBy, iso } from './check-helpers';

/**
 * The checks of continuous jobs (README, "Continuous jobs"), from the tick lines alone: each run
 * writes a tick every `tickMs` after checking `ctx.signal.aborted`, so a token is live from its
 * first tick to its last (a killed replica's ticks end at its kill).
 *
 * - Live time: a token's ticks, split where two are more than `gapMs` apart (a replica stopped,
 *   then resumed): its live segments.
 * - Zombie ticks. Redis issues a slot lease only while fewer than `max` are live. So when a newer
 *   token Y first ticks at s while `max` tokens other than T are live at s (Y included), T's slot
 *   lease had died before s: every tick of T after s is a zombie tick (a run acting on a slot it
 *   lost). With `max` 1 that is any tick of an older token after a newer one's first tick.
 *   One tick of a token within `zombieAllowanceMs` after SIGCONT of its replica is allowed (counted
 *   apart): a process frozen past its lease may act for a moment when it wakes, before its signal
 *   aborts (README, "Continuous jobs"); a second tick after the same wake is a violation.
 * - At most `max`: at no instant more than `max` live segments, the allowed zombie ticks set aside.
 * - Replaced in time: no span with fewer than `max` live runs longer than `replaceBoundMs`
 *   (a holder killed or stopped is replaced once its session and slot lease have expired).
 * - Tokens: each token on one replica; increasing with the time Redis issued it (ctx.startedAt),
 *   and with the true time of the first tick (less `startSlackMs`).
 */
export interface ContinuousCheckOptions {
  /** The longest span a continuous job may have fewer than `max` live runs (ms). */
  replaceBoundMs: number;
  /** Ticks further apart than this split a token's live time. @default 500 */
  gapMs?: number;
  /** One zombie tick per token and SIGCONT, this long after the SIGCONT of its replica, is allowed (still counted). @default 0 */
  zombieAllowanceMs?: number;
  /** Two first ticks closer than this may come in either token order (each is logged after its own claim's reply). @default 100 */
  startSlackMs?: number;
  /** Fail unless at least this many holders were killed or stopped while ticking (the faults happened). */
  minHolderFaults?: number;
}

export type ContinuousViolationKind = 'continuous-over-max' | 'continuous-zombie' | 'continuous-gap' | 'continuous-token' | 'continuous-untested';

export interface ContinuousViolation {
  kind: ContinuousViolationKind;
  job: string;
  detail: string;
}

export interface ContinuousJobStats {
  max: number;
  tokens: number;
  /** The longest span with fewer than `max` live runs (ms), and how many spans there were. */
  longestShortMs: number;
  shortSpans: number;
}

export interface ContinuousStats {
  jobs: Record<string, ContinuousJobStats>;
  zombieTicks: number;
  /** ... of which within the allowance after a SIGCONT. */
  allowedZombieTicks: number;
  /** For each zombie tick after a SIGCONT of its replica: how long after it (ms). */
  zombieDelaysAfterCont: number[];
  /** Kills and stops of a replica that was ticking (within `gapMs` before). */
  holderFaults: number;
}

/** The harness writes its `cont` line just after the signal: a woken replica may write first. */
const CONT_LINE_SLACK_MS = 20;

interface Segment {
  token: number;
  from: number;
  to: number;
}

export function checkContinuous(history: HistoryLine[], options: ContinuousCheckOptions): { violations: ContinuousViolation[]; stats: ContinuousStats } {
  const gapMs = options.gapMs ?? 500;
  const allowanceMs = options.zombieAllowanceMs ?? 0;
  const startSlackMs = options.startSlackMs ?? 100;
  const begin = history.find((line): line is ScenarioLine => line.type === 'scenario' && line.phase === 'begin');
  const endLine = history.find((line): line is ScenarioLine => line.type === 'scenario' && line.phase === 'end');
  const nemeses = history.filter((line): line is NemesisLine => line.type === 'nemesis').sort((a, b) => a.at - b.at);
  const ticks = history.filter((line): line is TickLine => line.type === 'tick').sort((a, b) => a.at - b.at);
  const end = endLine?.at ?? Math.max(0, ...ticks.map((tick) => tick.at));
  const from = begin?.at ?? Math.min(...ticks.map((tick) => tick.at));
  const violations: ContinuousViolation[] = [];
  const stats: ContinuousStats = { jobs: {}, zombieTicks: 0, allowedZombieTicks: 0, zombieDelaysAfterCont: [], holderFaults: 0 };

  const jobs = history.filter((line): line is JobLine => line.type === 'job' && line.continuous !== undefined);
  for (const { job, continuous } of jobs) {
    const max = continuous!.max;
    const jobTicks = ticks.filter((tick) => tick.job === job);
    const byToken = groupBy(jobTicks, (tick) => tick.token);
    const tokens = [...byToken.keys()].sort((a, b) => a - b);

    // Tokens: one replica each, increasing with their issue.
    for (const [token, own] of byToken) {
      const instances = [...new Set(own.map((tick) => tick.instance))];
      if (instances.length > 1) violations.push({ kind: 'continuous-token', job, detail: `token ${token} ran on ${instances.join(' and ')}` });
    }
    const firsts = tokens.map((token) => byToken.get(token)![0]);
    for (const a of firsts) {
      for (const b of firsts) {
        // ctx.startedAt is the replica's estimate of Redis's clock when its run starts, not when
        // Redis issued the token: two slots given a few ms apart may start in either order.
        if (b.acquiredAt > a.acquiredAt + startSlackMs && b.token < a.token) {
          violations.push({ kind: 'continuous-token', job, detail: `token ${b.token} was issued at ${iso(b.acquiredAt)}, after token ${a.token} (${iso(a.acquiredAt)})` });
        } else if (b.at > a.at + startSlackMs && b.token < a.token) {
          violations.push({ kind: 'continuous-token', job, detail: `token ${b.token} first ticked at ${iso(b.at)}, ${b.at - a.at} ms after the higher token ${a.token}` });
        }
      }
    }

    const segments = new Map<number, Segment[]>(tokens.map((token) => [token, segmentsOf(token, byToken.get(token)!, gapMs)]));
    const liveAt = (token: number, at: number) => segments.get(token)!.some((segment) => segment.from <= at && at <= segment.to);

    // Zombie ticks: after the first tick of a newer token issued while `max` others were live.
    const fencedAt = new Map<number, number>();
    for (const token of tokens) {
      for (const newer of tokens.filter((other) => other > token)) {
        const s = byToken.get(newer)![0].at;
        const others = tokens.filter((other) => other !== token && liveAt(other, s)).length;
        if (others >= max) {
          fencedAt.set(token, Math.min(fencedAt.get(token) ?? Infinity, s));
        }
      }
    }
    const allowedWakes = new Set<string>();
    const allowedTicks = new Set<TickLine>();
    for (const [token, fence] of fencedAt) {
      const zombies = byToken.get(token)!.filter((tick) => tick.at > fence);
      for (const tick of zombies) {
        stats.zombieTicks++;
        const cont = [...nemeses].reverse().find((line) => line.f === 'cont' && line.instance === tick.instance && line.at <= tick.at + CONT_LINE_SLACK_MS);
        const afterCont = cont ? Math.max(0, tick.at - cont.at) : null;
        if (afterCont !== null) stats.zombieDelaysAfterCont.push(afterCont);
        // One tick per wake: the overdue tick timer fires before the lease timer aborts the run.
        const wake = `${token}|${cont?.at}`;
        if (afterCont !== null && afterCont <= allowanceMs && !allowedWakes.has(wake)) {
          allowedWakes.add(wake);
          allowedTicks.add(tick);
          stats.allowedZombieTicks++;
          continue;
        }
        violations.push({
          kind: 'continuous-zombie',
          job,
          detail:
            `${tick.instance}#${token} ticked at ${iso(tick.at)} (seq ${tick.seq}), after a newer token took its slot at ${iso(fence)}` +
            (afterCont === null ? '' : ` (${afterCont} ms after SIGCONT, beyond the ${allowanceMs} ms allowed)`),
        });
      }
    }

    // At most `max` live at once, the allowed zombie ticks set aside (the others count: they are
    // reported as zombie ticks too, and as more than `max` live).
    const honest: Segment[] = [];
    for (const token of tokens) {
      const kept = byToken.get(token)!.filter((tick) => !allowedTicks.has(tick));
      honest.push(...segmentsOf(token, kept, gapMs));
    }
    const spans = liveCounts(honest);
    for (const span of spans.filter((span) => span.count > max)) {
      violations.push({ kind: 'continuous-over-max', job, detail: `${span.count} runs live ${iso(span.from)}–${iso(span.to)} (tokens ${span.tokens.join(', ')}), max ${max}` });
    }

    // Replaced in time: the spans with fewer than `max` live (one span however the count and tokens
    // change within it), within the scenario; one still open when the history ends counts as far as it went.
    const short: Span[] = [];
    for (const span of spans.filter((span) => span.count < max)) {
      const clipped = { ...span, from: Math.max(span.from, from), to: Math.min(span.to, end) };
      if (clipped.to <= clipped.from) continue;
      const last = short[short.length - 1];
      if (last && last.to === clipped.from) {
        last.to = clipped.to;
        last.count = Math.min(last.count, clipped.count);
      } else short.push(clipped);
    }
    let longest = 0;
    for (const span of short) {
      const length = span.to - span.from;
      longest = Math.max(longest, length);
      if (length > options.replaceBoundMs) {
        violations.push({ kind: 'continuous-gap', job, detail: `as few as ${span.count} of ${max} run(s) live for ${length} ms (${iso(span.from)}–${iso(span.to)}), above the bound of ${options.replaceBoundMs} ms` });
      }
    }
    stats.jobs[job] = { max, tokens: tokens.length, longestShortMs: longest, shortSpans: short.length };
  }

  // Faults that hit a holder: a kill or stop of a replica that ticked just before.
  for (const line of nemeses.filter((line) => line.f === 'kill' || line.f === 'stop')) {
    if (ticks.some((tick) => tick.instance === line.instance && tick.at <= line.at && tick.at >= line.at - gapMs)) stats.holderFaults++;
  }
  if (options.minHolderFaults !== undefined && stats.holderFaults < options.minHolderFaults) {
    violations.push({ kind: 'continuous-untested', job: '*', detail: `${stats.holderFaults} holder(s) killed or stopped, fewer than ${options.minHolderFaults}` });
  }
  return { violations, stats };
}

/** The token's ticks as live segments: split where two ticks are more than `gapMs` apart. */
function segmentsOf(token: number, ticks: TickLine[], gapMs: number): Segment[] {
  const segments: Segment[] = [];
  for (const tick of ticks) {
    const last = segments[segments.length - 1];
    if (last && tick.at - last.to <= gapMs) last.to = tick.at;
    else segments.push({ token, from: tick.at, to: tick.at });
  }
  return segments;
}

interface Span {
  from: number;
  to: number;
  count: number;
  tokens: number[];
}

/** The timeline cut where the live count changes: each span with its count (segment ends are inclusive). */
function liveCounts(segments: Segment[]): Span[] {
  const edges = [...new Set(segments.flatMap((segment) => [segment.from, segment.to]))].sort((a, b) => a - b);
  const spans: Span[] = [];
  const push = (from: number, to: number, live: Segment[]) => {
    const tokens = live.map((segment) => segment.token).sort((a, b) => a - b);
    const last = spans[spans.length - 1];
    if (last && last.to === from && last.tokens.join() === tokens.join()) last.to = to;
    else spans.push({ from, to, count: tokens.length, tokens });
  };
  for (let i = 0; i < edges.length; i++) {
    // The instant itself, then the open interval up to the next edge.
    push(edges[i], edges[i], segments.filter((segment) => segment.from <= edges[i] && edges[i] <= segment.to));
    if (i + 1 < edges.length) {
      const mid = (edges[i] + edges[i + 1]) / 2;
      push(edges[i], edges[i + 1], segments.filter((segment) => segment.from <= mid && mid <= segment.to));
    }
  }
  // Before the first tick and after the last one, nothing is live.
  if (edges.length > 0) {
    spans.unshift({ from: -Infinity, to: edges[0], count: 0, tokens: [] });
    spans.push({ from: edges[edges.length - 1], to: Infinity, count: 0, tokens: [] });
  }
  return spans;
}
