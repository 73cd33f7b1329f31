import type { Logger } from '@nestjs/common';
import type { Coordinator } from '../coordination/coordinator.interface';
import type { ClusterMembership } from '../cluster/cluster-membership.service';
import type { ResolvedSchedulerOptions } from '../scheduler-options.resolver';
import type { JobRegistry } from './job.registry';
import type { MissedFires, SchedulerErrorPhase } from './scheduler-error-event.interface';

/** A claim that failed while Redis still answers is tried again after this long. */
export const CLAIM_RETRY_MS = 1_000;
/** Slack for comparing this replica's estimate of Redis's clock with times Redis wrote. */
export const CLOCK_MARGIN_MS = 5;
/** setTimeout cannot wait longer than 2^31 - 1 ms; far fires wake the loop once an hour instead. */
export const MAX_TIMER_MS = 3_600_000;
/** After aborting runs at shutdown, how long to wait for their leases to be released. */
export const SHUTDOWN_RELEASE_MS = 2_000;

/** Where this replica is in its life: written by the orchestrator, read by its parts. */
export interface ReplicaLife {
  /** When this replica started (local clock), for `initialDelay` and `runOnStart: { delay }`. */
  startedAt: number;
  stopping: boolean;
  /** Set once shutdown has drained: a claim answered after that is released, not run. */
  closed: boolean;
  /**
   * Set when this replica left the live set at shutdown and the coordinator then listed no other
   * live replica: nothing can have run after its last snapshot (SnapshotPersister marks it final).
   */
  leftLast: boolean;
}

/** What the parts of the orchestrator (mirror, loop, claims, runs, sync, boot triggers) share. */
export interface OrchestratorContext {
  readonly options: ResolvedSchedulerOptions;
  readonly coordinator: Coordinator;
  readonly registry: JobRegistry;
  readonly logger: Logger;
  readonly life: ReplicaLife;
  /** This replica's membership: its heartbeats, and which members may claim each job (`placement`). */
  readonly cluster: ClusterMembership;
  /** Offers an error on `errors$` and logs it (the orchestrator's `report`); a `missed` notice is offered only (its part logs it). */
  report(phase: SchedulerErrorPhase, error: unknown, job?: string, missed?: MissedFires): void;
}

/** Resolves true if `promise` settles before `deadline` (epoch ms), false otherwise. */
export async function withDeadline(promise: Promise<unknown>, deadline: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()))));
  try {
    return await Promise.race([promise.then(() => true, () => true), expired]);
  } finally {
    clearTimeout(timer);
  }
}

export function iso(epochMs: number): string {
  return new Date(epochMs).toISOString();
}
