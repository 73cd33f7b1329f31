import { Logger } from '@nestjs/common';

/**
 * The audit trail of runtime controls (pause, resume, reset, updateSchedule, lock, unlock,
 * trigger): one line per control, logged by the replica that made it, naming the job, the change
 * and that instance. The other replicas follow the change without logging it again.
 */
export class ControlAudit {
  private readonly logger = new Logger('DistributedScheduler');

  constructor(private readonly instanceId: string) {}

  record(job: string, change: string): void {
    this.logger.log(`Job "${job}": ${change} (control by instance "${this.instanceId}").`);
  }

  /** A control that was refused rather than applied: a warning, since the caller's intent did not happen. */
  refused(job: string, change: string): void {
    this.logger.warn(`Job "${job}": ${change} (control by instance "${this.instanceId}").`);
  }
}

/** A due time in an audit line. */
export function auditTime(epochMs: number | null | undefined): string {
  return epochMs == null ? 'none' : new Date(epochMs).toISOString();
}
