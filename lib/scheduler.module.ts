import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { ConfigurableSchedulerModule } from './scheduler.module-definition';
import { coordinatorProvider, resolvedOptionsProvider } from './scheduler.providers';
import { JobExplorer } from './scheduling/job.explorer';
import { JobMetadataAccessor } from './scheduling/job-metadata.accessor';
import { JobRegistry } from './scheduling/job.registry';
import { JobScheduler } from './scheduling/job-scheduler.service';
import { SchedulerOrchestrator } from './scheduling/scheduler.orchestrator';
import { SnapshotPersister } from './snapshot/snapshot.persister';
import { ClusterMembership } from './cluster/cluster-membership.service';
import { PlacementStrategyRegistry } from './cluster/placement-strategy.registry';
import { ContinuousJobs } from './continuous/continuous-jobs.service';


/**
 * Runs `@DistributedJob` methods once per due time across the app's replicas.
 *
 * ```ts
 * SchedulerModule.forRoot({ redis: process.env.REDIS_URL })
 * SchedulerModule.forRootAsync({ inject: [ConfigService], useFactory: (config) => ({ redis: config.get('REDIS_URL') }) })
 * ```
 * The module is global: `JobScheduler` can be injected anywhere.
 */
@Module({
  imports: [DiscoveryModule],
  providers: [
    resolvedOptionsProvider,
    coordinatorProvider,
    JobMetadataAccessor,
    JobRegistry,
    PlacementStrategyRegistry,
    JobExplorer,
    ClusterMembership,
    SchedulerOrchestrator,
    JobScheduler,
    SnapshotPersister,
    ContinuousJobs,
  ],
  // With `records`, the module also exports ExecutionManager, TaskManager, SweepManager and VendorHookRegistry.
  exports: [JobScheduler, SnapshotPersister, ClusterMembership, PlacementStrategyRegistry],
})
export class SchedulerModule extends ConfigurableSchedulerModule {}
