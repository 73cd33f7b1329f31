import { BACKUP_CLAIM_DELAY_MS } from '../scheduler.constants';
import type { HostPlacement } from '../cluster/host-placement';
import { preferredReplica } from './preferred-replica';

/**
 * When this replica claims each job's fires. The preferred replica of a job (among the live
 * members that may claim it: workers, narrowed by the job's `hosts`) claims at the due time; the
 * others a moment later, when the preferred one has normally taken the fire, so they neither
 * compete with it nor let it run late unless it is gone.
 */
export class ClaimOrder {
  /** The placement generation the cached preferences were computed for. */
  private generation = -1;
  private readonly preferred = new Map<string, boolean>();

  constructor(
    private readonly instanceId: string,
    private readonly placement: HostPlacement,
  ) {}

  /** After a heartbeat: true if the members that may claim some job changed (and so claim times did). */
  setMembers(): boolean {
    if (this.placement.generation === this.generation) return false;
    this.generation = this.placement.generation;
    this.preferred.clear();
    return true;
  }

  /**
   * For a task (`taskId`), the preferred replica is chosen by the job and the task among the
   * job's claimers: the tasks of one job spread over the replicas instead of all going to the
   * job's preferred one.
   */
  claimTime(job: string, due: number, taskId: number | null = null): number {
    if (taskId !== null) return preferredReplica(`${job}\n${taskId}`, this.placement.claimers(job)) === this.instanceId ? due : due + BACKUP_CLAIM_DELAY_MS;
    let preferred = this.preferred.get(job);
    if (preferred === undefined) {
      preferred = preferredReplica(job, this.placement.claimers(job)) === this.instanceId;
      this.preferred.set(job, preferred);
    }
    return preferred ? due : due + BACKUP_CLAIM_DELAY_MS;
  }
}
