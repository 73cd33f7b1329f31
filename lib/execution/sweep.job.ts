import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { defineJob } from '../scheduling/job-definition';
import { JobRegistry } from '../scheduling/job.registry';
import { RESOLVED_RECORDS_OPTIONS, SWEEP_JOB_NAME } from './execution.constants';
import { Execution } from './execution.entity';
import { RecordsDialect } from './records.dialect';
import type { ResolvedRecordsOptions } from './records.resolver';
import { SweepManager } from './sweep.manager';

/**
 * The built-in sweep: a job like the app's own (so it runs once across the cluster) that keeps
 * the newest executions of each vendor type and repairs dangling ones.
 */
@Injectable()
export class SweepJob implements OnModuleInit {
  private readonly logger = new Logger('ExecutionRecords');

  constructor(
    @Inject(RESOLVED_RECORDS_OPTIONS) private readonly options: ResolvedRecordsOptions,
    @Inject(RecordsDialect) private readonly dialect: RecordsDialect,
    private readonly registry: JobRegistry,
    private readonly sweep: SweepManager,
  ) {}

  onModuleInit(): void {
    if (this.options.sweepEvery === null) return;
    this.registry.add({
      definition: defineJob({ name: SWEEP_JOB_NAME, every: this.options.sweepEvery, overlap: 'skip', retry: { attempts: 1 } }, SWEEP_JOB_NAME),
      target: 'SweepJob.run',
      handler: () => this.run(),
    });
  }

  /** Sweeps every vendor type once; returns how many executions were deleted. */
  async run(): Promise<number> {
    await this.sweep.fixDanglingStateExecution();
    const rows: { vendorType: string }[] = await this.dialect.manager
      .createQueryBuilder(Execution, 'r')
      .select('DISTINCT r.vendorType', 'vendorType')
      .getRawMany();
    let deleted = 0;
    for (const { vendorType } of rows) {
      const candidates = await this.sweep.listCandidates(vendorType, this.retainFor(vendorType));
      deleted += await this.sweep.clean(candidates);
    }
    if (deleted > 0) this.logger.log(`Swept ${deleted} old execution(s).`);
    return deleted;
  }

  /** `retainByVendor`, then a job's `retain`, then the module's `retain`. */
  retainFor(vendorType: string): number {
    const override = this.options.retainByVendor[vendorType];
    if (override !== undefined) return override;
    const job = this.registry.all().find((local) => local.definition.vendorType === vendorType && local.definition.retain !== null);
    return job?.definition.retain ?? this.options.retain;
  }
}
