import { Injectable, Logger } from '@nestjs/common';
import { RunRecord, RunRecorder, RunStart } from './run-recorder';

const NO_PARAMETERS = Object.freeze({});

/** The recorder of an app without execution records: every run starts, nothing is written. */
@Injectable()
export class NoRunRecords extends RunRecorder {
  private readonly loggers = new Map<string, Logger>();

  async start(run: RunStart): Promise<RunRecord> {
    const name = run.job.definition.name;
    let logger = this.loggers.get(name);
    if (!logger) this.loggers.set(name, (logger = new Logger(name)));
    return {
      executionId: null,
      taskId: null,
      trigger: run.trigger,
      parameters: NO_PARAMETERS,
      logger,
      checkIn: async () => undefined,
      finish: async () => undefined,
    };
  }

  async drain(): Promise<void> {}
}
