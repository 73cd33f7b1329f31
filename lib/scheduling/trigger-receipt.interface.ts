/** Why a trigger did not run: the job's manual lock, or (overlap `'skip'`) a run still going. */
export type TriggerSkipReason = 'locked' | 'running';

/**
 * What `JobScheduler.trigger` answers. `accepted`: the request is pending and one replica will
 * claim it (a run that starts in the meantime can still make the claim skip it under overlap
 * `'skip'`; that is logged with the trigger's id). `skipped`: it will not run, and why.
 * The same request id sent again gets the same answer.
 */
export type TriggerReceipt = TriggerAccepted | TriggerSkipped;

export interface TriggerAccepted {
  /** The request's id: yours if you gave one, else a random UUID. Logs name the trigger by it. */
  id: string;
  job: string;
  status: 'accepted';
  /** When the coordinator took the request (its clock). */
  requestedAt: Date;
}

export interface TriggerSkipped {
  id: string;
  job: string;
  status: 'skipped';
  reason: TriggerSkipReason;
  /** Who holds the lock (`locked`), or the instance running the job (`running`). */
  holder: string;
  requestedAt: Date;
}
