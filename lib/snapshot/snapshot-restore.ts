import type { Coordinator, ExportedJob, JobRestore } from '../coordination/coordinator.interface';
import { iso } from '../scheduling/orchestrator-context';
import { NextFire, Schedule } from '../scheduling/schedule';
import type { Snapshot } from './snapshot-format';

/** How often a restore computes a later due time when the coordinator says the one it sent has come. */
const MAX_RESTORE_ATTEMPTS = 5;

/** One job written back, for the log line and `status()`. */
export interface RestoredJob {
  job: ExportedJob;
  first: NextFire | null;
}

/**
 * The due time a job is restored with: the snapshot's, if it is still after `after` (the later of
 * the snapshot's served due time and the coordinator's clock); otherwise the next one after
 * `after` on the job's cadence. A due time that has come may have run after the snapshot was
 * written (the snapshot cannot know), so it is never restored: it is skipped, as after a loss
 * without a snapshot (StateRestore).
 */
export function restoredFirst(job: ExportedJob, after: number): NextFire | null {
  if (job.paused || !job.spec) return null;
  const floor = Math.max(after, job.served ?? 0);
  if (job.due !== null && job.base !== null && job.due > floor) return { base: job.base, due: job.due };
  return new Schedule(job.spec).next(job.base, floor);
}

/**
 * The due time a job is restored with from a final snapshot (nothing ran after it): the one it
 * had, even if it has come; the missed-run policy then decides what runs for it.
 */
export function finalFirst(job: ExportedJob): NextFire | null {
  if (job.paused || !job.spec || job.due === null || job.base === null) return null;
  return { base: job.base, due: job.due };
}

/**
 * Writes the snapshot's jobs back where the coordinator lost them (each one only if it is
 * missing, atomically with that check: replicas restoring together write each job once). Answers
 * the jobs this call wrote; none if another replica restored them first or nothing was lost.
 */
export async function restoreSnapshot(coordinator: Coordinator, instanceId: string, snapshot: Snapshot): Promise<RestoredJob[]> {
  const fenceFloor = (job: ExportedJob) => Math.max(job.fence, snapshot.writtenAt);
  const exact = snapshot.final;
  const first = (job: ExportedJob) => (exact ? finalFirst(job) : restoredFirst(job, coordinator.clock.latest()));
  let pending: JobRestore[] = snapshot.jobs.map((job) => ({ job, first: first(job), fenceFloor: fenceFloor(job), exact }));
  const restored: RestoredJob[] = [];
  for (let attempt = 0; attempt < MAX_RESTORE_ATTEMPTS && pending.length > 0; attempt++) {
    const outcomes = await coordinator.restoreState(pending, instanceId);
    const retry: JobRestore[] = [];
    outcomes.forEach((outcome, index) => {
      const sent = pending[index];
      if (outcome.outcome === 'restored') restored.push({ job: sent.job, first: sent.first });
      else if (outcome.outcome === 'passed') retry.push({ ...sent, first: restoredFirst(sent.job, outcome.now) });
    });
    pending = retry;
  }
  if (pending.length > 0) {
    throw new Error(`restoring ${pending.map((p) => `"${p.job.name}"`).join(', ')} from the snapshot failed: the coordinator's clock kept passing the due time computed for it`);
  }
  return restored;
}

/** The one log line of a restore: what was restored, and from when. */
export function describeRestore(restored: RestoredJob[], snapshot: Snapshot, where: string): string {
  const shown = restored.slice(0, 20).map(({ job, first }) => {
    const parts: string[] = [];
    if (job.paused) parts.push('paused');
    if (JSON.stringify(job.spec) !== JSON.stringify(job.definition.spec)) parts.push(`schedule overridden: ${describeSpec(job.spec)}`);
    if (job.locked) parts.push(`locked by "${job.locked.by}"${job.locked.until ? ` until ${iso(job.locked.until)}` : ''}`);
    if (job.checkpoint?.state != null) parts.push('checkpoint');
    parts.push(first ? `next run at ${iso(first.due)}` : 'no scheduled run');
    return `"${job.name}" (${parts.join(', ')})`;
  });
  const more = restored.length > shown.length ? `, and ${restored.length - shown.length} more` : '';
  return (
    `Restored ${restored.length} job(s) that the coordinator had lost from the snapshot written at ${iso(snapshot.writtenAt)} by "${snapshot.writtenBy}" ` +
    `(${where}): ${shown.join(', ')}${more}. ` +
    (snapshot.final
      ? 'The snapshot was written at shutdown by the last live replica: the due times since are served by each job\'s missed-run policy; '
      : 'Due times that came after the snapshot and before the restore are skipped (one may have run before the loss); ') +
    `fencing tokens stay above every earlier one; pending triggers, leases and queued runs are not in snapshots.`
  );
}

function describeSpec(spec: ExportedJob['spec']): string {
  if (!spec) return 'on demand';
  return spec.cron !== undefined ? `cron "${spec.cron}"${spec.timeZone ? ` (${spec.timeZone})` : ''}` : `every ${spec.every} ms`;
}
