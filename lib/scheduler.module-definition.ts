import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { SchedulerModuleOptions } from './scheduler-options.interface';

export const {
  ConfigurableModuleClass: ConfigurableSchedulerModule,
  MODULE_OPTIONS_TOKEN: SCHEDULER_MODULE_OPTIONS,
  OPTIONS_TYPE: SCHEDULER_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: SCHEDULER_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<SchedulerModuleOptions>()
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createSchedulerOptions')
  // The transform is what makes `global` reach the module; without it the extra is dropped.
  .setExtras({ global: true }, (definition, extras) => ({ ...definition, global: extras.global }))
  .build();

/** The argument of `SchedulerModule.forRootAsync`: `useFactory` + `inject`, `useClass` or `useExisting`. */
export type SchedulerModuleAsyncOptions = typeof SCHEDULER_ASYNC_OPTIONS_TYPE;
