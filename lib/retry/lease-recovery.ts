import type { RecoveryOutcome, RecoveryRequest } from '../coordination/coordinator.interface';
import { HEARTBEAT_INTERVAL_MS } from '../scheduler.constants';
import { iso, type OrchestratorContext } from '../scheduling/orchestrator-context';
import { RECOVERY_GRACE_MS } from './retry.constants';
import { resolveRetry } from './retry.options';

/** Expired leases read (and recovered) per call; more are read again at once. */
const RECOVERY_BATCH = 100;
/** A lease is looked at this long after its expiry, so a renewal sent just before it lands first. */
const EXPIRY_MARGIN_MS = 50;

/**
 * Recovers runs whose replica died: a run's lease that expired without a finish (the process was
 * killed, paused past `lockTtl`, cut off from Redis) becomes its next attempt on whichever replica
 * claims it, if its job's `retry.attempts` allows one more (a recovery counts as an attempt);
 * otherwise the run is counted as abandoned (`describe().abandonedRuns`) and logged.
 *
 * Detection costs no polling per job: every lease's expiry is a member of one sorted set
 * (`{p}:leases`), moved by each renewal. Each replica reads its soonest members (one ZRANGE) and
 * arms one timer at the next expiry it saw, or a heartbeat interval later if that is sooner
 * (leases taken after the read are not known yet): a dead run is found within `lockTtl` plus one
 * heartbeat of its last renewal, and usually within milliseconds of its expiry. The recovery
 * itself is one script per batch, atomic per run: the first replica wins, the others find it gone.
 * A replica recovers only the jobs it has (it knows their retry policy).
 */
export class LeaseRecovery {
  private timer?: NodeJS.Timeout;
  private scanning = false;
  private stopped = true;

  constructor(private readonly ctx: OrchestratorContext) {}

  start(): void {
    this.stopped = false;
    this.arm(0);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.scan(), Math.max(0, delayMs)).unref();
  }

  /** One look at the expired leases; arms the next one. */
  async scan(): Promise<void> {
    if (this.scanning || this.stopped) return;
    this.scanning = true;
    let next = HEARTBEAT_INTERVAL_MS;
    try {
      if (this.ctx.coordinator.isAvailable()) next = await this.recoverExpired();
    } catch (error) {
      this.ctx.report('recover', error);
    } finally {
      this.scanning = false;
      this.arm(next);
    }
  }

  /** Recovers what has expired; returns how long to wait before looking again. */
  private async recoverExpired(): Promise<number> {
    const { coordinator, registry } = this.ctx;
    const { expired, nextExpiry } = await coordinator.expiredLeases(RECOVERY_BATCH);
    const requests: RecoveryRequest[] = [];
    const now = coordinator.clock.now();
    for (const lease of expired) {
      const job = registry.get(lease.name);
      // A job this replica does not have is left to the replicas that do (they know its retry
      // policy), unless none came for it within the grace: then what is left of it is dropped.
      if (job) requests.push({ ...lease, attempts: resolveRetry(this.ctx.options.retry, job.definition.retry).attempts });
      else if (now - lease.expiredAt > RECOVERY_GRACE_MS) requests.push({ ...lease, attempts: 1 });
    }
    if (requests.length > 0) (await coordinator.recoverLeases(requests)).forEach((outcome) => this.tell(outcome));
    // A full batch: there may be more behind it.
    if (expired.length === RECOVERY_BATCH && requests.length > 0) return 0;
    const heartbeat = HEARTBEAT_INTERVAL_MS;
    if (nextExpiry === null) return heartbeat;
    return Math.min(heartbeat, nextExpiry - coordinator.clock.now() + EXPIRY_MARGIN_MS);
  }

  private tell(outcome: RecoveryOutcome): void {
    const { logger } = this.ctx;
    switch (outcome.status) {
      case 'recovered':
        logger.warn(
          `Job "${outcome.name}": the run with fencing token ${outcome.fencingToken} (${what(outcome)}, on replica "${outcome.instanceId}") ` +
            `lost its lease at ${iso(outcome.expiredAt)} without finishing: its replica died, was paused or was cut off. ` +
            `Attempt ${outcome.attempt} recovers it now, on whichever replica claims it.`,
        );
        return;
      case 'abandoned': {
        if (this.ctx.registry.get(outcome.name)?.definition.continuous) {
          // A continuous job never retries: its slot is free again, and a chosen replica takes it (ContinuousJobs).
          logger.warn(
            `Continuous job "${outcome.name}": the slot lease with fencing token ${outcome.fencingToken} of replica "${outcome.instanceId}" expired at ` +
              `${iso(outcome.expiredAt)} without a release (the replica died, was paused or was cut off): the slot is free for a chosen replica.`,
          );
          return;
        }
        const message =
          `Job "${outcome.name}": the run with fencing token ${outcome.fencingToken} (${what(outcome)}, attempt ${outcome.attempt}, on replica "${outcome.instanceId}") ` +
          `lost its lease at ${iso(outcome.expiredAt)} without finishing: its replica died, was paused or was cut off. ` +
          `It is not run again: its retry.attempts allow no attempt after ${outcome.attempt} (a recovery counts as an attempt); counted in describe().abandonedRuns.`;
        logger.error(message);
        this.ctx.report('run', new Error(message), outcome.name);
        return;
      }
      case 'lost':
        logger.error(
          `Job "${outcome.name}": the run with fencing token ${outcome.fencingToken} lost its lease without finishing, and no replica with the job ` +
            `looked at it before its lease's details were dropped: it is not run again (counted in describe().abandonedRuns).`,
        );
        return;
      case 'corrupt':
        this.ctx.report('data', new Error(`the run with fencing token ${outcome.fencingToken} cannot be recovered: key "${outcome.key}" holds data the scheduler did not write: ${outcome.problem}`), outcome.name);
        return;
      default:
        return; // alive (renewed meanwhile) or gone (finished, stopped, or recovered by another replica)
    }
  }
}

function what(run: { taskId?: number; scheduledAt: number; trigger: string }): string {
  return run.taskId !== undefined ? `task ${run.taskId}` : `${run.trigger} run serving ${iso(run.scheduledAt)}`;
}
