import { SchedulerError } from './scheduler.error';

/** The embedded coordinator would make every production replica run every job. */
export class EmbeddedInProductionError extends SchedulerError {
  constructor() {
    super(
      'SchedulerModule: NODE_ENV is "production" and no `redis` option is set, so the embedded ' +
        'coordinator would run, and every replica of the app would run every job. Set `redis` ' +
        '(a URL, ioredis options or a client) or, for an app that runs as one process, `allowEmbedded: true`.',
    );
  }
}
