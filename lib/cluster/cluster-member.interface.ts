import type { Labels } from './cluster.options';
import type { DepartureReason, MemberRun } from './member-record.interface';

/** A live replica of the cluster, as `ClusterMembership.members()` reads it. */
export interface ClusterMember {
  /** Its `instanceId`. */
  readonly id: string;
  readonly labels: Labels;
  /** False for an API-only replica (`worker: false`): it runs no handler. */
  readonly worker: boolean;
  /** How long ago (ms, on the coordinator's clock) its latest heartbeat was. */
  readonly heartbeatAge: number;
  /** When it joined (the coordinator's clock). */
  readonly joinedAt: Date;
  /** It leaves the live set this long (ms) after its latest heartbeat. */
  readonly sessionTtl: number;
  /** The runs it had started and not ended at its latest heartbeat: job names and fencing tokens. */
  readonly runs: readonly MemberRun[];
  /** This replica. */
  readonly self: boolean;
}

/** What `members$` emits: a replica joined the cluster, or left it (at shutdown, or its session expired). */
export type MembershipEvent =
  | { readonly type: 'joined'; readonly member: MemberSummary; readonly at: Date }
  | { readonly type: 'left'; readonly member: MemberSummary; readonly reason: DepartureReason; readonly at: Date };

export interface MemberSummary {
  readonly id: string;
  readonly labels: Labels;
  readonly worker: boolean;
  readonly self: boolean;
}
