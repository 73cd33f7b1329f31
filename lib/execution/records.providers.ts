import type { DynamicModule, Provider } from '@nestjs/common';
import { getDataSourceToken, TypeOrmModule } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { RunRecorder } from '../scheduling/run-recorder';
import { AfterCommit } from './after-commit';
import { schedulerEntities } from './entity-schemas';
import { RESOLVED_RECORDS_OPTIONS } from './execution.constants';
import { ExecutionManager } from './execution.manager';
import type { RecordsOptions } from './records-options.interface';
import { RecordsDialect } from './records.dialect';
import { resolveRecordsOptions } from './records.resolver';
import { RecordsRunRecorder } from './records.run-recorder';
import { StatusChangeHandler } from './status-change.handler';
import { SweepJob } from './sweep.job';
import { SweepManager } from './sweep.manager';
import { LocalTaskDispatcher, TaskDispatcher } from './task-dispatcher';
import { TaskManager } from './task.manager';
import { VendorHooksExplorer } from './vendor-hooks.explorer';
import { VendorHookRegistry } from './vendor-hooks.registry';

/**
 * What `records` adds to `SchedulerModule`. Loaded only when records are on, so that an app
 * without TypeORM never loads `@nestjs/typeorm` or `typeorm`.
 */
export function recordsModuleParts(records: RecordsOptions | true): Required<Pick<DynamicModule, 'imports' | 'providers' | 'exports'>> {
  const options = resolveRecordsOptions(records);
  const dataSource = getDataSourceToken(options.dataSource);
  const providers: Provider[] = [
    { provide: RESOLVED_RECORDS_OPTIONS, useValue: options },
    { provide: RecordsDialect, useFactory: (source: DataSource) => new RecordsDialect(source), inject: [dataSource] },
    { provide: AfterCommit, useFactory: (source: DataSource) => new AfterCommit(source), inject: [dataSource] },
    VendorHookRegistry,
    VendorHooksExplorer,
    StatusChangeHandler,
    RecordsRunRecorder,
    { provide: RunRecorder, useExisting: RecordsRunRecorder },
    { provide: TaskDispatcher, useClass: LocalTaskDispatcher },
    ExecutionManager,
    TaskManager,
    SweepManager,
    SweepJob,
  ];
  return {
    imports: [TypeOrmModule.forFeature(schedulerEntities(), options.dataSource)],
    providers,
    exports: [ExecutionManager, TaskManager, SweepManager, VendorHookRegistry],
  };
}
