import { SchedulerError } from './scheduler.error';

/** `JobScheduler.lock` could not take the job's lock because a run or another holder has it. */
export class JobLockedError extends SchedulerError {
  constructor(
    readonly job: string,
    readonly holder: string,
    reason: 'running' | 'locked',
  ) {
    super(
      reason === 'running'
        ? `Job "${job}" is running on instance "${holder}"; lock it again once that run has ended.`
        : `Job "${job}" is already locked by "${holder}"; unlock it first.`,
    );
  }
}
