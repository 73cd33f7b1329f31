import type { Logger } from '@nestjs/common';
import { createHash } from 'node:crypto';
import type { Coordinator, JobRegistration, JobState } from '../coordination/coordinator.interface';
import { sharedDefinition } from './job-definition';
import type { LocalJob } from './job.registry';
import { iso } from './orchestrator-context';
import { NextFire, Schedule } from './schedule';

/** How often a restore computes a later due time when Redis says the one it sent has come. */
const MAX_RESTORE_ATTEMPTS = 5;

/**
 * What a replica sends to register a job: its code's definition, and when it re-creates a job
 * Redis lost (`known`), the runtime schedule, paused flag and due time it knew.
 */
export function registration(job: LocalJob, known: JobState | undefined, now: number): JobRegistration {
  const definition = sharedDefinition(job.definition);
  const spec = known ? known.spec : definition.spec;
  const schedule = spec ? new Schedule(spec) : null;
  let first: NextFire | null = null;
  if (schedule && !(known ? known.paused : definition.paused)) {
    first = known?.due != null && known.base != null ? { base: known.base, due: known.due } : schedule.next(null, now);
  }
  const definitionHash = createHash('sha1').update(JSON.stringify(definition)).digest('hex');
  // Re-creating a job Redis lost: keep what this replica knew of its runtime state.
  const runtime = known && { spec: known.spec, paused: known.paused };
  return { name: job.definition.name, definition, definitionHash, runtime, first };
}

/** One job this replica re-created, for the log line. */
interface Recreated {
  name: string;
  due: number | null;
  /** The due time it knew, skipped because it had come when the loss was found: it may have run. */
  skipped: number | null;
}

/**
 * Re-creates the jobs Redis lost (restarted without persistence, or flushed). The rule: after
 * Redis loses its state, a due time that came before the loss was detected may be skipped, never
 * run twice. A replica cannot tell from Redis's replies whether a due time that has come was
 * served between the moment it last saw the state and the loss (another replica may have claimed
 * it, and the loss hid that), but a due time still ahead of Redis's clock cannot have been: a
 * claim consumes a due time only once Redis's clock has reached it. So a job is re-created with
 * the due time this replica knew only if it is still ahead (the register script checks it on
 * Redis's clock, atomically with the creation); otherwise with the next one after Redis's now,
 * on the job's cadence, and the skipped one is logged.
 */
export class StateRestore {
  constructor(
    private readonly coordinator: Coordinator,
    private readonly instanceId: string,
    private readonly logger: Logger,
  ) {}

  /** Re-creates `jobs` (missing from Redis) with what this replica knew of them; logs once what it re-created. */
  async restore(jobs: LocalJob[], known: ReadonlyMap<string, JobState>): Promise<void> {
    let pending = jobs.map((job) => ({ job, registration: registration(job, known.get(job.definition.name), this.coordinator.clock.latest()) }));
    const skipped = new Map<string, number>();
    const recreated: Recreated[] = [];
    for (let attempt = 0; attempt < MAX_RESTORE_ATTEMPTS && pending.length > 0; attempt++) {
      const outcomes = await this.coordinator.register(
        pending.map((p) => p.registration),
        'restore',
        this.instanceId,
      );
      const retry: typeof pending = [];
      outcomes.forEach((outcome, index) => {
        const { job, registration: sent } = pending[index];
        if (outcome.outcome === 'created') {
          recreated.push({ name: outcome.name, due: sent.first?.due ?? null, skipped: skipped.get(outcome.name) ?? null });
        } else if (outcome.outcome === 'passed' && sent.first && sent.runtime?.spec) {
          if (!skipped.has(outcome.name)) skipped.set(outcome.name, sent.first.due);
          const first = new Schedule(sent.runtime.spec).next(sent.first.base, outcome.now);
          retry.push({ job, registration: { ...sent, first } });
        } else if (outcome.outcome === 'passed') {
          // Nothing known of its runtime state: its code's schedule, from Redis's now.
          const spec = sent.definition.spec!;
          retry.push({ job, registration: { ...sent, first: new Schedule(spec).next(null, outcome.now) } });
        }
      });
      pending = retry;
    }
    if (pending.length > 0) {
      throw new Error(`re-creating ${pending.map((p) => `"${p.job.definition.name}"`).join(', ')} failed: Redis's clock kept passing the due time computed for it`);
    }
    if (recreated.length > 0) this.logger.warn(describeRecreated(recreated));
  }
}

function describeRecreated(jobs: Recreated[]): string {
  const each = jobs.map(({ name, due, skipped }) => {
    const next = due === null ? 'no scheduled run (paused or on demand)' : `next run at ${iso(due)}`;
    return `"${name}" (${next}${skipped !== null ? `; the fire due at ${iso(skipped)} is skipped: it may have run before the loss` : ''})`;
  });
  return (
    `Redis lost the state of ${jobs.length} job(s) (it restarted without persistence or was flushed). Re-created from what ` +
    `this instance knew: ${each.join(', ')}. Pending triggers, leases and last runs of these jobs were lost with it; a due ` +
    `time that came before the loss was found may be skipped, never run twice.`
  );
}
