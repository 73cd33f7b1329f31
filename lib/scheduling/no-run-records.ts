import { Injectable, Logger } from '@nestjs/common';
import { RunRecord, RunRecorder, RunStart } from './run-recorder';

const NO_PARAMETERS = Object.freeze({});

/** The recorder of an app without execution records: every run starts, nothing is written. */
@Injectable()
export class NoRunRecords extends RunRecorder {
  async start(run: RunStart): Promise<RunRecord> {
    return unrecorded(run);
  }

  async drain(): Promise<void> {}
}

const loggers = new Map<string, Logger>();

/** A run's record when nothing is recorded: no ids, no parameters, the job's logger. */
export function unrecorded(run: RunStart): RunRecord {
  const name = run.job.definition.name;
  let logger = loggers.get(name);
  if (!logger) loggers.set(name, (logger = new Logger(name)));
  return {
    executionId: null,
    taskId: null,
    trigger: run.trigger,
    parameters: NO_PARAMETERS,
    logger,
    checkIn: async () => undefined,
    checkpointSaved: () => undefined,
    finish: async () => undefined,
  };
}
