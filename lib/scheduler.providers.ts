import type { Provider } from '@nestjs/common';
import { Coordinator } from './coordination/coordinator.interface';
import { EmbeddedCoordinator } from './coordination/embedded/embedded.coordinator';
import { RedisCoordinator } from './coordination/redis/redis.coordinator';
import { RESOLVED_SCHEDULER_OPTIONS } from './scheduler.constants';
import { SCHEDULER_MODULE_OPTIONS } from './scheduler.module-definition';
import type { SchedulerModuleOptions } from './scheduler-options.interface';
import { resolveSchedulerOptions, ResolvedSchedulerOptions } from './scheduler-options.resolver';

/** Defaults are applied, and options validated, here and only here. */
export const resolvedOptionsProvider: Provider = {
  provide: RESOLVED_SCHEDULER_OPTIONS,
  useFactory: (options: SchedulerModuleOptions) => resolveSchedulerOptions(options),
  inject: [SCHEDULER_MODULE_OPTIONS],
};

export const coordinatorProvider: Provider = {
  provide: Coordinator,
  useFactory: (options: ResolvedSchedulerOptions): Coordinator =>
    options.redis === undefined ? new EmbeddedCoordinator() : new RedisCoordinator(options.redis, options.keyPrefix),
  inject: [RESOLVED_SCHEDULER_OPTIONS],
};
