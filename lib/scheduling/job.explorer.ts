import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper';
import { RequestScopedJobError } from '../errors';
import { RESOLVED_SCHEDULER_OPTIONS } from '../scheduler.constants';
import type { ResolvedSchedulerOptions } from '../scheduler-options.resolver';
import type { JobContext } from './job-context.interface';
import { defineJob } from './job-definition';
import { JobMetadataAccessor } from './job-metadata.accessor';
import { JobRegistry } from './job.registry';
import { fromNestSchedule, takeOverNestSchedule } from './nest-schedule.bridge';
import { checkHostsStrategy } from '../cluster/hosts.options';
import { PlacementStrategyRegistry } from '../cluster/placement-strategy.registry';
import { checkContinuousStrategy } from '../continuous/continuous.options';

/**
 * Finds every `@DistributedJob` method at module init and validates it, so that a bad option
 * fails the app's bootstrap rather than the first fire. It only collects: nothing runs here.
 */
@Injectable()
export class JobExplorer implements OnModuleInit {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly metadata: JobMetadataAccessor,
    private readonly registry: JobRegistry,
    @Inject(RESOLVED_SCHEDULER_OPTIONS) private readonly options: ResolvedSchedulerOptions,
    private readonly strategies: PlacementStrategyRegistry,
  ) {}

  onModuleInit(): void {
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) this.explore(wrapper);
  }

  private explore(wrapper: InstanceWrapper): void {
    const { instance } = wrapper;
    const prototype = instance && Object.getPrototypeOf(instance);
    if (!prototype) return;
    const className = instance.constructor?.name ?? String(wrapper.name);
    for (const methodName of this.scanner.getAllMethodNames(prototype)) {
      const method = prototype[methodName];
      const options = this.metadata.getJobOptions(method);
      if (!options) continue;
      const target = `${className}.${methodName}`;
      // Again here, for classes decorated after their module's import (the decorator's microtask
      // has run for all others).
      takeOverNestSchedule(method);
      const taken = this.metadata.getTakenOverSchedule(method);
      const definition = defineJob(taken ? fromNestSchedule(target, options, taken) : options, target, this.options.bounds, this.options.missedRuns);
      checkHostsStrategy(definition.name, definition.hosts, options.hosts, (name) => !!this.strategies.get(name), () => this.strategies.names());
      checkContinuousStrategy(definition.name, definition.continuous, options.continuous, (name) => !!this.strategies.get(name), () => this.strategies.names());
      if (!wrapper.isDependencyTreeStatic()) throw new RequestScopedJobError(definition.name, className);
      this.registry.add({
        definition,
        target,
        handler: (context: JobContext) => method.call(instance, context),
      });
    }
  }
}
