import { ConfigurableModuleBuilder, DynamicModule } from '@nestjs/common';
import type { RecordsOptions } from './execution/records-options.interface';
import type { SchedulerModuleOptions } from './scheduler-options.interface';
import { NoRunRecords } from './scheduling/no-run-records';
import { RunRecorder } from './scheduling/run-recorder';

/** Options that decide the module's shape, so `forRootAsync` takes them beside its factory. */
export interface SchedulerModuleExtras {
  /** @default true */
  global?: boolean;
  /**
   * Execution records on TypeORM (`true` for the defaults). Off by default: an app without
   * TypeORM schedules exactly the same.
   */
  records?: RecordsOptions | boolean;
}

export const {
  ConfigurableModuleClass: ConfigurableSchedulerModule,
  MODULE_OPTIONS_TOKEN: SCHEDULER_MODULE_OPTIONS,
  OPTIONS_TYPE: SCHEDULER_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: SCHEDULER_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<SchedulerModuleOptions>()
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createSchedulerOptions')
  // The transform is what makes the extras reach the module; without it they are dropped.
  .setExtras<SchedulerModuleExtras>({ global: true, records: false }, (definition, extras) =>
    withRecords({ ...definition, global: extras.global }, extras.records),
  )
  .build();

function withRecords(definition: DynamicModule, records: RecordsOptions | boolean | undefined): DynamicModule {
  if (records === undefined || records === false) {
    return { ...definition, providers: [...(definition.providers ?? []), { provide: RunRecorder, useClass: NoRunRecords }] };
  }
  // Required here, not imported, so that apps without TypeORM never load it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { recordsModuleParts } = require('./execution/records.providers') as typeof import('./execution/records.providers');
  const parts = recordsModuleParts(records);
  return {
    ...definition,
    imports: [...(definition.imports ?? []), ...parts.imports],
    providers: [...(definition.providers ?? []), ...parts.providers],
    exports: [...(definition.exports ?? []), ...parts.exports],
  };
}

/** The argument of `SchedulerModule.forRootAsync`: `useFactory` + `inject`, `useClass` or `useExisting`. */
export type SchedulerModuleAsyncOptions = typeof SCHEDULER_ASYNC_OPTIONS_TYPE;
