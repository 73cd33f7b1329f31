import { SchedulerError } from './scheduler.error';

/** A vendor type got a second hook of one kind; which one should run would be a guess. */
export class DuplicateVendorHookError extends SchedulerError {
  constructor(
    readonly kind: string,
    readonly vendorType: string,
  ) {
    super(`A ${kind} is already registered for vendor type "${vendorType}"; each vendor type has at most one.`);
  }
}
