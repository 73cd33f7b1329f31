import type { Cluster, Redis, RedisOptions } from 'ioredis';
import type { CheckpointOptions } from './checkpoint/checkpoint.interface';
import type { SnapshotOptions } from './snapshot/snapshot.options';
import type { MissedPolicy } from './scheduling/missed-runs';
import type { RetryOptions } from './retry/retry.interface';
import type { WorkerOptions } from './cluster/cluster.options';

/** Where the scheduler coordinates: a URL, ioredis options, or a client the app already has. */
export type RedisConnection = string | RedisOptions | Redis | Cluster;

export interface SchedulerModuleOptions {
  /**
   * The Redis the replicas coordinate on: a URL (`redis://host:6379/0`), ioredis options, or an
   * existing ioredis client (standalone or Cluster). The library never closes a client it did not
   * create. Omitted: the embedded coordinator, for a single process.
   * @default undefined (embedded)
   */
  redis?: RedisConnection;
  /**
   * Allows the embedded coordinator when `NODE_ENV` is `production`. Without it, such a start
   * fails, because every replica of a production app would run every job.
   * @default false
   */
  allowEmbedded?: boolean;
  /**
   * Prefix of every Redis key and channel. It is wrapped in a hash tag (`{dsched}:...`), so all
   * keys of one prefix live in one Redis Cluster slot and the Lua scripts can touch them together.
   * @default 'dsched'
   */
  keyPrefix?: string;
  /**
   * This replica's name in locks, job descriptions and logs.
   * @default `${hostname}-${pid}-${random}`
   */
  instanceId?: string;
  /**
   * Lease of a running job's lock, in ms. It is extended every `lockTtl / 3` while the handler
   * runs; a replica that dies holding it blocks the job for at most this long.
   * @default 30000
   */
  lockTtl?: number | string;
  /**
   * How long shutdown waits for running handlers before aborting them through `ctx.signal`, in ms.
   * @default 10000
   */
  shutdownTimeout?: number | string;
  /**
   * The shortest period a schedule may have (ms or `'1s'`), checked on every path that sets one:
   * `@DistributedJob`, `updateSchedule`. With a value above 1 s, cron expressions are checked too
   * (a cron expression fires at most once a second). The longest period is fixed: 366 days.
   * At least 10 ms.
   * @default 1000
   */
  minPeriod?: number | string;
  /**
   * Starts the scheduling loop at application bootstrap. With `false`, call `JobScheduler.start()`.
   * @default true
   */
  autoStart?: boolean;
  /**
   * When a run's `ctx.checkpoint` updates are written to the coordinator: after `maxUpdates`
   * updates (default 100) or `interval` after the first one not yet written (default 5 s, at
   * least 1 s), and at the run's end. A job's `@DistributedJob({ checkpoint })` overrides these.
   * @default { maxUpdates: 100, interval: 5000 }
   */
  checkpoint?: CheckpointOptions;
  /**
   * Snapshots of every job's shared state (schedule in force, pause, manual lock, last due time
   * served and last run, fencing counter, checkpoint), written by one replica every `every` and
   * after `maxChanges` changes, and at shutdown; restored when Redis has lost the jobs (or, on
   * the embedded coordinator, when the app starts). Kept in the records' database
   * (`dsched_snapshot`) when `records` is on, or in `file`. `false` turns them off.
   * @default on with `records` (every 30 s, 100 changes, 5 kept); off without `records` unless `file` is given
   */
  snapshot?: SnapshotOptions | false;
  /**
   * The default missed-run policy of every job (`@DistributedJob({ missed })` overrides it): what
   * runs for the due times that passed while nobody could serve them (the cluster was down,
   * Redis unreachable, or its state restored from the past). `'skip'`: none; `'once'`: one run
   * for the latest of them; `'all'`: one per missed due time, oldest first, one at a time.
   * @default 'once' (a nightly report missed during an outage runs once when the cluster is back)
   */
  missed?: MissedPolicy;
  /** The default catch-up window (ms or `'24h'`): missed due times older than this never run. @default '24h' */
  catchUpWindow?: number | string;
  /** The default cap on catch-up runs of `missed: 'all'` (the latest ones), 1 to 1,000. @default 100 */
  maxCatchUp?: number;
  /**
   * The default retry policy of every job (`@DistributedJob({ retry })` overrides it field by
   * field, `backoff` fields included): how many attempts a run whose handler throws gets, and the
   * waits between them. The built-in jobs (sweep, snapshot) never retry.
   * @default { attempts: 1 } (no retry), backoff { delay: 1000, factor: 2, maxDelay: '1h', jitter: 0 }
   */
  retry?: RetryOptions;
  /**
   * How long (ms or `'10s'`) this replica stays a member of the cluster without a heartbeat: a
   * replica that dies leaves the live set this long after its last one, and the jobs it was
   * chosen for (`hosts`) go to others. Heartbeats are sent every third of it (at most every 5 s).
   * From 1 s to 1 hour.
   * @default 10000 (as mgmt's scheduler)
   */
  sessionTtl?: number | string;
  /**
   * This replica's labels, such as `{ zone: 'eu-1', role: 'worker' }`: shown by
   * `ClusterMembership.members()` and matched by a job's `hosts.labels`. String keys and values.
   * @default {}
   */
  labels?: Record<string, string>;
  /**
   * `false` makes an API-only replica: a member that never claims a fire nor runs a handler,
   * but registers its jobs and can trigger, pause, describe them, and create tasks that the
   * workers run. A job no worker can run waits. `{ concurrency }`: a worker that runs at most
   * that many tasks (`TaskManager.create`) at once; the tasks beyond wait for a free slot here
   * or are taken by other replicas. Scheduled fires are not counted.
   * @default true (a worker with `concurrency: 10`)
   */
  worker?: boolean | WorkerOptions;
}

export interface SchedulerOptionsFactory {
  createSchedulerOptions(): Promise<SchedulerModuleOptions> | SchedulerModuleOptions;
}
