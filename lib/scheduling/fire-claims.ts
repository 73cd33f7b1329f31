import type { ClaimRequest, ClaimResult } from '../coordination/coordinator.interface';
import { ClaimInterruptedError } from '../coordination/claim-interrupted.error';
import { MissedFiresError } from '../errors';
import type { CoordinatorClock } from './coordinator-clock';
import type { DueEntry } from './due-queue';
import type { DueLoop } from './due-loop';
import type { JobMirror } from './job-mirror';
import type { ClaimsInDoubt } from './claims-in-doubt';
import { missedGrace, MissedPlan, missedRunsOf, planMissed } from './missed-runs';
import { CLAIM_RETRY_MS, CLOCK_MARGIN_MS, iso, OrchestratorContext } from './orchestrator-context';
import type { RunSupervisor } from './run-supervisor';
import { parseRetryId } from '../retry/retry-id';
import { taskOfTrigger } from '../dispatch/task-trigger-id';
import { TaskSlots } from '../dispatch/task-slots';

/** How soon Redis is asked again about a claim left unanswered, while the read itself fails. */
const CLAIM_RECOVERY_RETRY_MS = 250;

/**
 * The claims of one replica: the fires and triggers the loop found due go to the coordinator in
 * one `claim` call, each with the next due time computed from the revision in the mirror; each
 * answer is settled: a run won is started, a fire moved or skipped updates the mirror, a failed
 * claim is retried (and the replica's own leases of those jobs looked up, in case it won).
 */
export class FireClaims {
  /** Entries being claimed, so that one fire is never in two claims at once. */
  private readonly claiming = new Set<string>();
  private readonly claimsInFlight = new Set<Promise<void>>();
  private recoveryTimer?: NodeJS.Timeout;
  /** The plans for missed due times of the claims in flight, by request (for the answer's log line). */
  private readonly plans = new WeakMap<ClaimRequest, MissedPlan>();
  /** Per job, the due fire answered `busy` (a catch-up run goes on): claimed again as soon as a run of the job ends here. */
  private readonly waiting = new Map<string, DueEntry>();
  /** This replica's task slots (`worker.concurrency`), and the tasks waiting for one or for their job's `concurrency`. */
  private readonly slots: TaskSlots;

  constructor(
    private readonly ctx: OrchestratorContext,
    private readonly mirror: JobMirror,
    private readonly loop: DueLoop,
    private readonly runs: RunSupervisor,
    /** Reads some jobs' shared state again (MirrorSync); settles when it has been read, or failed. */
    private readonly resync: (names: string[]) => Promise<void>,
    /** Claims that went unanswered; MirrorSync closes them when a read of this replica's leases answers. */
    private readonly inDoubt: ClaimsInDoubt,
  ) {
    this.slots = new TaskSlots(
      ctx.options.cluster.concurrency,
      () => runs.tasksRunning(),
      (entry) => this.isTask(entry),
      (entry) => !ctx.life.stopping && this.claimable(entry) && ctx.cluster.placement.mayClaim(entry.name),
      (entries) => this.claimDue(entries),
      () => this.clock.now(),
    );
  }

  /** At shutdown: no more questions about unanswered claims. */
  stop(): void {
    clearTimeout(this.recoveryTimer);
    this.slots.clear();
  }

  /** The coordinator's clock as this replica knows it: every due time is on it. */
  private get clock(): CoordinatorClock {
    return this.ctx.coordinator.clock;
  }

  /**
   * A run of the job ended here (its lease released or lost): a fire that waited for it (`busy`)
   * is claimed now. Replicas that do not hold the run retry when its lease would expire.
   */
  runEnded(name: string): void {
    if (!this.ctx.life.stopping) this.slots.ended(name);
    const entry = this.waiting.get(name);
    if (!entry || this.ctx.life.stopping) return;
    this.waiting.delete(name);
    this.loop.push({ ...entry, at: this.clock.now() });
    this.loop.arm();
  }

  /** Settles when the claims sent so far have been answered (a claim in flight may still start a run). */
  inFlight(): Promise<unknown> {
    return Promise.all(this.claimsInFlight);
  }

  /** Claims the entries the loop found due that still describe a fire to claim. */
  claimDue(due: DueEntry[]): void {
    // Tasks beyond this replica's free slots wait in TaskSlots (and go to other replicas meanwhile).
    const entries = this.slots.admit(due.filter((entry) => this.claimable(entry))).filter((entry) => this.takeForClaim(entry));
    if (entries.length === 0) return;
    const claiming = this.claim(entries).catch((error) => this.ctx.report('claim', error));
    this.claimsInFlight.add(claiming);
    void claiming.finally(() => this.claimsInFlight.delete(claiming));
  }

  /** True if the entry still describes a fire to claim that is not being claimed. */
  private claimable(entry: DueEntry): boolean {
    return this.mirror.holds(entry) && !this.claiming.has(claimKey(entry));
  }

  /** A task, dispatched or a task's retry (not a run of the job itself)? */
  private isTask(entry: DueEntry): boolean {
    const pending = entry.member !== undefined ? this.mirror.trigger(entry.member) : undefined;
    return pending !== undefined && taskOfTrigger(pending.id) !== null;
  }

  /** True if the entry still describes a fire to claim; marks it as being claimed. */
  private takeForClaim(entry: DueEntry): boolean {
    const key = claimKey(entry);
    if (!this.mirror.holds(entry) || this.claiming.has(key)) return false;
    this.claiming.add(key);
    return true;
  }

  private async claim(entries: DueEntry[]): Promise<void> {
    let requests: ClaimRequest[] = [];
    let results: ClaimResult[];
    try {
      const now = this.clock.latest();
      requests = entries.map((entry) => this.claimRequest(entry, now));
      results = await this.ctx.coordinator.claim(requests, this.ctx.options.instanceId, this.ctx.options.lockTtl);
    } catch (error) {
      // The batches answered before the failure have claimed: run what they won.
      const settled = error instanceof ClaimInterruptedError ? error.settled : [];
      settled.forEach((result, index) => this.settle(entries[index], requests[index], result));
      const failed = entries.slice(settled.length);
      failed.forEach((entry) => {
        if (this.isTask(entry)) this.slots.settled(entry, false);
        this.claiming.delete(claimKey(entry));
      });
      this.ctx.report('claim', error instanceof ClaimInterruptedError ? error.cause : error);
      // While Redis is away, the resync on its return re-arms everything.
      if (this.ctx.coordinator.isAvailable()) {
        failed.forEach((entry) => this.loop.push({ ...entry, at: this.clock.now() + CLAIM_RETRY_MS }));
        // A claim that timed out or lost its reply may have run all the same: ask Redis at once
        // (after it, on the same connection) for this replica's live leases of these jobs and
        // run them, and again until it answers; the retry, if it still goes, is answered with
        // the same lease (claim.lua).
        this.inDoubt.raise(
          failed.map((entry) => entry.name),
          this.clock.latest() + this.ctx.options.lockTtl,
        );
        void this.recover();
        this.loop.arm();
      }
      return;
    }
    results.forEach((result, index) => this.settle(entries[index], requests[index], result));
    this.loop.arm();
  }

  /** Asks Redis for this replica's leases of the jobs whose claims went unanswered, until it answers. */
  private async recover(): Promise<void> {
    const names = this.inDoubt.pending(this.clock.now());
    if (names.length === 0 || this.ctx.life.stopping || this.recoveryTimer) return;
    await this.resync(names);
    if (this.ctx.life.stopping || this.recoveryTimer || this.inDoubt.pending(this.clock.now()).length === 0) return;
    this.recoveryTimer = setTimeout(() => {
      this.recoveryTimer = undefined;
      void this.recover();
    }, CLAIM_RECOVERY_RETRY_MS).unref();
  }

  private claimRequest(entry: DueEntry, now: number): ClaimRequest {
    const state = this.mirror.state(entry.name)!;
    const schedule = this.mirror.scheduleOf(state);
    let next = null;
    const threshold = entry.member === undefined ? this.ctx.registry.get(entry.name)?.definition.threshold : null;
    // Due times missed (not served in their own period): the policy in force decides what runs.
    const plan = schedule && entry.member === undefined && state.base !== null ? this.planMissed(entry, now) : null;
    if (plan) {
      const missed = { serve: plan.serve, catchUp: plan.catchUp, skipped: plan.skipped?.count ?? 0, through: plan.through, episodeTo: plan.missed.to };
      const request: ClaimRequest = { name: entry.name, rev: state.rev, next: plan.next, due: entry.due, missed, ...(threshold != null ? { threshold } : {}) };
      this.plans.set(request, plan);
      return request;
    }
    // From no earlier than the fire claimed: with `now` a little behind it, an `every` job would
    // otherwise restart from `now`, and the claim script would refuse the due time it is serving.
    if (schedule && entry.member === undefined) next = schedule.next(state.base, Math.max(now, entry.due!));
    // A manual run restarts the period (as cronutil's Trigger); queued and start runs, and retries, leave the cadence alone.
    else if (schedule && this.mirror.trigger(entry.member!)?.trigger === 'MANUAL' && !parseRetryId(this.mirror.trigger(entry.member!)!.id)) {
      next = schedule.next(null, now);
    }
    // A task runs within its job's `concurrency` (checked by the claim, across the cluster).
    const concurrency = this.isTask(entry) ? this.ctx.registry.get(entry.name)?.definition.concurrency : null;
    return {
      name: entry.name,
      rev: state.rev,
      next,
      due: entry.due,
      member: entry.member,
      ...(threshold != null ? { threshold } : {}),
      ...(concurrency != null ? { concurrency } : {}),
    };
  }

  /**
   * The plan of a claim of a due time, if some due times were missed (null: an ordinary claim).
   * On the coordinator's clock; the policy is the one of the definition in force (shared), the
   * threshold this replica's (as for the `late` check).
   */
  private planMissed(entry: DueEntry, now: number): MissedPlan | null {
    const state = this.mirror.state(entry.name)!;
    const schedule = this.mirror.scheduleOf(state)!;
    const policy = missedRunsOf(state.definition.missed);
    const threshold = this.ctx.registry.get(entry.name)?.definition.threshold ?? null;
    return planMissed(schedule, state.base!, entry.due!, now, { ...policy, grace: missedGrace(this.ctx.options.lockTtl), threshold });
  }

  /** One warning and one `missed` event per episode of missed due times (not one per due time). */
  private announceMissed(name: string, plan: MissedPlan, result: ClaimResult): void {
    const continued = result.status === 'claimed' && result.continued === true;
    if (continued && !plan.skipped) return;
    const { missed, skipped, policy } = plan;
    const count = (n: number, exact: boolean) => `${exact ? '' : 'at least '}${n}`;
    const fires = (n: number) => (n === 1 ? 'fire' : 'fires');
    const between = missed.count === 1 ? `due at ${iso(missed.from)}` : `between ${iso(missed.from)} and ${iso(missed.to)}`;
    const window = this.windowText(name);
    let what: string;
    if (continued) {
      what = `${count(skipped!.count, skipped!.exact)} more missed ${fires(skipped!.count)} skipped during its catch-up (${window})`;
    } else {
      const head = `${count(missed.count, missed.exact)} ${fires(missed.count)} missed ${between} (missed: '${policy}')`;
      let outcome: string;
      const skippedText = skipped ? `${count(skipped.count, skipped.exact)} skipped` : 'none skipped';
      if (result.status === 'claimed' && plan.catchUp && policy === 'all') {
        outcome = `running ${plan.runs} of them one at a time, oldest first, from the one due at ${iso(plan.serve!)}; ${skippedText} (${window})`;
      } else if (result.status === 'claimed' && plan.catchUp) {
        outcome = `running the one due at ${iso(plan.serve!)}${skipped ? `; the other ${count(skipped.count, skipped.exact)} skipped` : ''}`;
      } else if (plan.serve !== null && !plan.catchUp) {
        outcome = `skipped; the fire due at ${iso(plan.serve)} is on time and runs as usual`;
      } else if (plan.serve !== null) {
        outcome = `the catch-up run of the one due at ${iso(plan.serve)} was not started (${result.status}); ${skippedText}`;
      } else if (policy === 'skip') {
        outcome = `none runs; next run at ${iso(plan.next.due)}`;
      } else {
        outcome = `none runs: none is within ${window}; next run at ${iso(plan.next.due)}`;
      }
      what = `${head}: ${outcome}`;
    }
    const message = `Job "${name}": ${what}.`;
    this.ctx.logger.warn(message);
    this.ctx.report('missed', new MissedFiresError(name, message), name, {
      policy,
      count: missed.count,
      from: new Date(missed.from),
      to: new Date(missed.to),
      skipped: skipped?.count ?? 0,
      catchUpRuns: result.status === 'claimed' && plan.catchUp ? plan.runs : 0,
      runningFrom: result.status === 'claimed' && plan.catchUp ? new Date(plan.serve!) : null,
      exact: missed.exact && (skipped?.exact ?? true),
    });
  }

  /** The catch-up window in force for a job, in words. */
  private windowText(name: string): string {
    const policy = missedRunsOf(this.mirror.state(name)?.definition.missed);
    const threshold = this.ctx.registry.get(name)?.definition.threshold;
    const limits = `the catch-up window of ${duration(policy.catchUpWindow)}${threshold != null ? `, threshold ${duration(threshold)}` : ''}`;
    return policy.policy === 'all' ? `${limits}, maxCatchUp ${policy.maxCatchUp}` : limits;
  }

  private settle(entry: DueEntry, request: ClaimRequest, result: ClaimResult): void {
    if (this.isTask(entry)) {
      // A task's slot is a run now, or free again; one its job has no room for waits for a task of the job to end.
      if (result.status === 'busy') this.slots.full(entry, result.expiresAt);
      this.slots.settled(entry, result.status !== 'claimed' && result.status !== 'busy');
      this.claiming.delete(claimKey(entry));
      if (result.status === 'busy') return;
      this.settleClaim(entry, request, result);
      if (result.status !== 'claimed') this.slots.pump();
      return;
    }
    this.settleClaim(entry, request, result);
  }

  private settleClaim(entry: DueEntry, request: ClaimRequest, result: ClaimResult): void {
    this.claiming.delete(claimKey(entry));
    const plan = this.plans.get(request);
    // Consumed (or not: busy and the answers that change nothing) with its missed due times.
    if (plan && !['busy', 'moved', 'early', 'stale', 'missing', 'corrupt', 'gone'].includes(result.status)) this.announceMissed(entry.name, plan, result);
    const { name } = entry;
    const { logger } = this.ctx;
    const state = this.mirror.state(name);
    // A fire or a trigger: what the logs call it (a trigger by its id, as its receipt does).
    const pending = entry.member !== undefined ? this.mirror.trigger(entry.member) : undefined;
    const what = (scheduledAt: number) => {
      if (!pending) return `the fire due at ${iso(scheduledAt)}`;
      const retry = parseRetryId(pending.id);
      if (retry) return `attempt ${retry.attempt} (a retry) of the run of ${iso(scheduledAt)}`;
      if (pending.trigger === 'MANUAL') return `the manual trigger ${pending.id} requested at ${iso(scheduledAt)}`;
      return pending.trigger === 'EVENT' ? `the start run (runOnStart) requested at ${iso(scheduledAt)}` : `the queued run requested at ${iso(scheduledAt)}`;
    };
    // A trigger's `next` (a manual run restarts the period) applies only if it ran.
    const consume = (ran = false) => {
      if (entry.member !== undefined) this.mirror.dropTrigger(entry.member);
      if (request.next && state && !state.paused && (entry.member === undefined || ran)) {
        Object.assign(state, request.next);
        this.loop.queueDue(name, state.due!);
      }
    };
    switch (result.status) {
      case 'claimed':
        consume(true);
        // Even while stopping: the fire is ours now, and shutdown waits for the run. Only once
        // shutdown is over is it handed back.
        if (this.ctx.life.closed) void this.runs.release({ name, fencingToken: result.fencingToken, status: 'stopped', error: 'the replica shut down' });
        // Redis started the lease when it read its clock for the claim.
        else this.runs.startRun(name, result, result.startedAt, result.startedAt + this.ctx.options.lockTtl);
        return;
      case 'skipped':
        consume();
        logger.warn(
          `Job "${name}": ${what(result.scheduledAt)} was skipped: ` +
            (result.reason === 'running' ? `a run is still going on instance "${result.holder}" (overlap: 'skip').` : `the job is locked by "${result.holder}".`),
        );
        return;
      case 'missed':
        consume();
        return;
      case 'busy':
        // Catch-up runs go one at a time: claimed again when the run ends (at once if it runs
        // here, else when its lease would expire, which finds it renewed or gone).
        this.waiting.set(name, entry);
        this.loop.push({ ...entry, at: Math.max(this.clock.now(), result.expiresAt + CLOCK_MARGIN_MS) });
        return;
      case 'late':
        consume();
        logger.warn(
          `Job "${name}": the fire due at ${iso(result.scheduledAt)} was skipped: it was claimed ${result.lateMs} ms late, ` +
            `past its threshold of ${request.threshold} ms.`,
        );
        return;
      case 'queued':
        consume();
        logger.log(`Job "${name}": ${what(result.scheduledAt)} will run when the run on instance "${result.holder}" ends (overlap: 'queue-one').`);
        return;
      case 'moved':
        if (!state || result.rev !== state.rev) return void this.resync([name]);
        state.due = result.due;
        state.base = result.base;
        if (result.due !== null) this.loop.queueDue(name, result.due);
        return;
      case 'early':
        this.loop.push({ ...entry, at: this.clock.now() + result.waitMs });
        return;
      case 'gone':
        if (entry.member !== undefined) this.mirror.dropTrigger(entry.member);
        return;
      case 'stale':
      case 'missing':
        // The resync queues the trigger again, with the job's current revision.
        if (entry.member !== undefined) this.mirror.dropTrigger(entry.member);
        return void this.resync([name]);
      case 'corrupt':
        return this.mirror.isolate({ name, key: result.key, problem: result.problem });
    }
  }
}

function claimKey(entry: DueEntry): string {
  return entry.member ?? `${entry.name}@${entry.due}`;
}

/** A duration in the words of a log line: `24h`, `90s`, `250 ms`. */
function duration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1_000 === 0) return `${ms / 1_000}s`;
  return `${ms} ms`;
}
