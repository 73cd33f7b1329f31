import { BACKUP_CLAIM_DELAY_MS } from '../scheduler.constants';
import { preferredReplica } from './preferred-replica';

/**
 * When this replica claims each job's fires. The preferred replica of a job (among the live
 * ones) claims at the due time; the others a moment later, when the preferred one has normally
 * taken the fire, so they neither compete with it nor let it run late unless it is gone.
 */
export class ClaimOrder {
  private members: readonly string[] = [];
  private readonly preferred = new Map<string, boolean>();

  constructor(private readonly instanceId: string) {}

  /** Takes the live set from a heartbeat; true if it changed (and so claim times did). */
  setMembers(members: readonly string[]): boolean {
    if (members.join('\n') === this.members.join('\n')) return false;
    this.members = members;
    this.preferred.clear();
    return true;
  }

  claimTime(job: string, due: number): number {
    let preferred = this.preferred.get(job);
    if (preferred === undefined) {
      const candidates = this.members.includes(this.instanceId) ? this.members : [...this.members, this.instanceId];
      preferred = preferredReplica(job, candidates) === this.instanceId;
      this.preferred.set(job, preferred);
    }
    return preferred ? due : due + BACKUP_CLAIM_DELAY_MS;
  }
}
