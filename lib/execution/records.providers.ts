import { Logger, type DynamicModule, type Provider } from '@nestjs/common';
import { getDataSourceToken, TypeOrmModule } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { InvalidSchedulerOptionError } from '../errors';
import { RunRecorder } from '../scheduling/run-recorder';
import { AfterCommit } from './after-commit';
import { schedulerEntities } from './entity-schemas';
import { RESOLVED_RECORDS_OPTIONS, type RecordsDatabase } from './execution.constants';
import { ExecutionManager } from './execution.manager';
import type { RecordsOptions } from './records-options.interface';
import { RecordsDialect } from './records.dialect';
import { resolveRecordsOptions } from './records.resolver';
import { RecordsRunRecorder } from './records.run-recorder';
import { StatusChangeHandler } from './status-change.handler';
import { SweepJob } from './sweep.job';
import { SweepManager } from './sweep.manager';
import { ClusterTaskDispatcher, TaskDispatcher } from './task-dispatcher';
import { TaskManager } from './task.manager';
import { VendorHooksExplorer } from './vendor-hooks.explorer';
import { VendorHookRegistry } from './vendor-hooks.registry';
import { RESOLVED_SCHEDULER_OPTIONS } from '../scheduler.constants';
import type { ResolvedSchedulerOptions } from '../scheduler-options.resolver';
import { SNAPSHOT_DATABASE_STORE } from '../snapshot/snapshot.constants';
import { TypeOrmSnapshotStore } from '../snapshot/typeorm-snapshot.store';

/**
 * What `records` adds to `SchedulerModule`. Loaded only when records are on, so that an app
 * without TypeORM never loads `@nestjs/typeorm` or `typeorm`.
 */
export function recordsModuleParts(records: RecordsOptions | true): Required<Pick<DynamicModule, 'imports' | 'providers' | 'exports'>> {
  const options = resolveRecordsOptions(records);
  const dataSource = getDataSourceToken(options.dataSource);
  const providers: Provider[] = [
    { provide: RESOLVED_RECORDS_OPTIONS, useValue: options },
    { provide: RecordsDialect, useFactory: (source: DataSource) => dialectFor(source, options.database), inject: [dataSource] },
    { provide: AfterCommit, useFactory: (source: DataSource) => new AfterCommit(source), inject: [dataSource] },
    VendorHookRegistry,
    VendorHooksExplorer,
    StatusChangeHandler,
    RecordsRunRecorder,
    { provide: RunRecorder, useExisting: RecordsRunRecorder },
    { provide: TaskDispatcher, useClass: ClusterTaskDispatcher },
    ExecutionManager,
    TaskManager,
    SweepManager,
    SweepJob,
    // Snapshots go to the records' database unless `snapshot.file` is given (SnapshotPersister decides).
    {
      provide: SNAPSHOT_DATABASE_STORE,
      useFactory: (source: DataSource, scheduler: ResolvedSchedulerOptions) => new TypeOrmSnapshotStore(source, scheduler.snapshot?.keep ?? 1),
      inject: [dataSource, RESOLVED_SCHEDULER_OPTIONS],
    },
  ];
  return {
    imports: [TypeOrmModule.forFeature(schedulerEntities(options.database), options.dataSource)],
    providers,
    exports: [ExecutionManager, TaskManager, SweepManager, VendorHookRegistry],
  };
}

/**
 * The entities registered for `records.database` carry that database's column types, which on
 * another database are wrong or do not exist (TypeORM itself rejects most such mixes): the start
 * fails, naming the option, rather than recording into tables of the wrong shape.
 */
function dialectFor(source: DataSource, database: RecordsDatabase | undefined): RecordsDialect {
  const dialect = new RecordsDialect(source);
  if (database === undefined) {
    // Without it the tables are mapped the way 0.1 mapped them, which is not what the shipped
    // migrations create: `synchronize` or `migration:generate` would then alter our columns.
    new Logger('ExecutionRecords').warn(
      `Option "records.database" is not set: the record tables are mapped generically, not as schedulerMigrations('${dialect.database}') creates them. ` +
        `Set records: { database: '${dialect.database}' } (see the README, "Tables, synchronize and migrations").`,
    );
  }
  if (database !== undefined && dialect.database !== database) {
    const type: string = source.options.type;
    throw new InvalidSchedulerOptionError('records.database', database, `the DataSource is "${type}", which is '${dialect.database}'`);
  }
  return dialect;
}
