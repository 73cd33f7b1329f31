import { Injectable } from '@nestjs/common';
import { DuplicateJobError } from '../errors';
import type { JobContext } from './job-context.interface';
import type { JobDefinition } from './job-definition';

/** A job found in this app's code: its validated definition and the method that runs it. */
export interface LocalJob {
  readonly definition: JobDefinition;
  /** `ClassName.methodName`, for messages. */
  readonly target: string;
  readonly handler: (context: JobContext) => unknown;
}

/** The jobs this replica can run, filled once by the explorer at module init. */
@Injectable()
export class JobRegistry {
  private readonly jobs = new Map<string, LocalJob>();

  add(job: LocalJob): void {
    const existing = this.jobs.get(job.definition.name);
    if (existing) throw new DuplicateJobError(job.definition.name, existing.target, job.target);
    this.jobs.set(job.definition.name, job);
  }

  get(name: string): LocalJob | undefined {
    return this.jobs.get(name);
  }

  has(name: string): boolean {
    return this.jobs.has(name);
  }

  all(): LocalJob[] {
    return [...this.jobs.values()];
  }

  names(): string[] {
    return [...this.jobs.keys()];
  }
}
