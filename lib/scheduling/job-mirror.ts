import type { CorruptKey, JobState, PendingTrigger, RegistrationOutcome } from '../coordination/coordinator.interface';
import { CorruptJobs } from './corrupt-jobs';
import type { DueEntry } from './due-queue';
import type { DueLoop } from './due-loop';
import { sharedDefinition } from './job-definition';
import type { OrchestratorContext } from './orchestrator-context';
import { Schedule } from './schedule';

/**
 * This replica's mirror of its jobs' shared state: each job's state as last read (schedule,
 * revision, due time), the pending triggers it knows, and the schedules computed from them.
 * Every due time and trigger it takes in is queued on the loop. A job whose keys are corrupt is
 * isolated (CorruptJobs): it leaves the mirror until its keys read well again.
 */
export class JobMirror {
  private readonly states = new Map<string, JobState>();
  private readonly schedules = new Map<string, { rev: number; spec: string; schedule: Schedule | null }>();
  private readonly pending = new Map<string, PendingTrigger>();
  /** Jobs whose keys are corrupt: isolated, and read again with backoff. */
  private readonly corruptJobs: CorruptJobs;
  /** Per job, the other definition last warned about (shared with SupersededDefinitions, so each is said once). */
  readonly definitionsWarned = new Map<string, string>();

  constructor(
    private readonly ctx: OrchestratorContext,
    private readonly loop: DueLoop,
    /** Reads one job's keys again (a resync of that job). */
    recheck: (name: string) => void,
  ) {
    this.corruptJobs = new CorruptJobs(ctx.logger, recheck);
  }

  /** Every job's state, for re-creating the jobs Redis lost (StateRestore). */
  get known(): ReadonlyMap<string, JobState> {
    return this.states;
  }

  state(name: string): JobState | undefined {
    return this.states.get(name);
  }

  trigger(member: string): PendingTrigger | undefined {
    return this.pending.get(member);
  }

  pendingTriggers(): PendingTrigger[] {
    return [...this.pending.values()];
  }

  dropTrigger(member: string): void {
    this.pending.delete(member);
  }

  /** A full sync reads every trigger again. */
  clearTriggers(): void {
    this.pending.clear();
  }

  /** True if the entry still describes a fire (or trigger) of a job in the mirror. */
  holds(entry: DueEntry): boolean {
    const state = this.states.get(entry.name);
    return state !== undefined && (entry.member !== undefined ? this.pending.has(entry.member) : state.due === entry.due);
  }

  /** Queues every due time and trigger again (claim times changed). */
  queueAll(): void {
    for (const state of this.states.values()) if (state.due !== null) this.loop.queueDue(state.name, state.due);
    for (const trigger of this.pending.values()) this.loop.queueTrigger(trigger);
  }

  applyState(state: JobState): void {
    // A spec edited by hand keeps its revision: check what was read, not what was cached.
    if (this.schedules.get(state.name)?.spec !== JSON.stringify(state.spec)) {
      this.schedules.delete(state.name);
      const problem = scheduleProblem(() => this.scheduleOf(state), state.base, this.ctx.coordinator.clock.now());
      if (problem) {
        this.schedules.delete(state.name);
        return this.isolate({ name: state.name, key: this.ctx.coordinator.jobKey(state.name), problem: `its field "spec" is not a schedule: ${problem}` });
      }
    }
    this.corruptJobs.healthy(state.name);
    this.warnIfDefinitionDiffers(state);
    const returning = !this.states.has(state.name);
    this.states.set(state.name, state);
    if (state.due !== null) this.loop.queueDue(state.name, state.due);
    // A trigger announced while the job had no state here (isolated, or not read yet) was dropped
    // from the queue when its time came: queue it again now that it can be claimed.
    if (returning) for (const trigger of this.pending.values()) if (trigger.name === state.name) this.loop.queueTrigger(trigger);
  }

  addTrigger(trigger: PendingTrigger): void {
    if (!this.ctx.registry.has(trigger.name) || this.pending.has(trigger.member)) return;
    this.pending.set(trigger.member, trigger);
    this.loop.queueTrigger(trigger);
  }

  /**
   * A job whose keys are corrupt: claimed no more here (its fires and triggers are forgotten until
   * its keys read well again; the snapshot that finds them so brings them back), reported once
   * per episode, and read again with backoff.
   */
  isolate(corrupt: CorruptKey): void {
    this.states.delete(corrupt.name);
    for (const [member, trigger] of this.pending) if (trigger.name === corrupt.name) this.pending.delete(member);
    const error = this.corruptJobs.found(corrupt);
    if (error) this.ctx.report('data', error, corrupt.name);
  }

  scheduleOf(state: JobState): Schedule | null {
    const cached = this.schedules.get(state.name);
    if (cached?.rev === state.rev) return cached.schedule;
    const schedule = state.spec ? new Schedule(state.spec) : null;
    this.schedules.set(state.name, { rev: state.rev, spec: JSON.stringify(state.spec), schedule });
    return schedule;
  }

  logRegistration(outcomes: RegistrationOutcome[]): void {
    for (const outcome of outcomes) {
      // A definition this instance follows instead of its own is reported by applyState.
      if (outcome.outcome !== 'replaced') continue;
      const mine = JSON.stringify(sharedDefinition(this.ctx.registry.get(outcome.name)!.definition));
      this.ctx.logger.warn(
        `Job "${outcome.name}": this instance's definition ${mine} replaces ${JSON.stringify(outcome.other)}, registered by ` +
          `"${outcome.otherBy}". The most recently started replica wins; replicas on the older code follow the new one.`,
      );
    }
  }

  /** During a rolling deploy, replicas on the older code say once what they now follow. */
  private warnIfDefinitionDiffers(state: JobState): void {
    const theirs = JSON.stringify(state.definition);
    const mine = JSON.stringify(sharedDefinition(this.ctx.registry.get(state.name)!.definition));
    if (theirs === mine || this.definitionsWarned.get(state.name) === theirs) return;
    this.definitionsWarned.set(state.name, theirs);
    this.ctx.logger.warn(
      `Job "${state.name}": the definition in force, ${theirs}, registered by "${state.definedBy}", differs from this ` +
        `instance's ${mine}. Following it: the most recently started replica's definition wins.`,
    );
  }

  /** At shutdown: no more re-reads of corrupt jobs. */
  stop(): void {
    this.corruptJobs.clear();
  }
}

/** Why a stored schedule cannot be followed (its next fire cannot be computed, or is not ahead), or null. */
function scheduleProblem(schedule: () => Schedule | null, base: number | null, now: number): string | null {
  try {
    const next = schedule()?.next(base, now);
    if (next && !(Number.isFinite(next.due) && next.base > now)) return `its next fire would be ${JSON.stringify(next)}`;
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}
