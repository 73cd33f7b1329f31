import { SchedulerError } from './scheduler.error';

/**
 * A stored snapshot that cannot be read: a format this version does not know (written by a newer
 * one), or not what its format says. The app starts from its code; the read is counted.
 */
export class SnapshotFormatError extends SchedulerError {
  constructor(
    /** Where the snapshot is: a file, or a row of a table. */
    readonly location: string,
    /** The `format` it declares, as read (undefined if it has none). */
    readonly format: unknown,
    reason: string,
  ) {
    super(`The snapshot in ${location} cannot be read: ${reason}. The jobs start from their code.`);
  }
}
