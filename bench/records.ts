/**
 * What execution records cost, on PostgreSQL (a database of the bench's own on the local
 * server): records written per second, the scheduling lag they add per run, and the time to sweep
 * 100,000 executions. Run by `npm run bench` after the scheduling figures; bench/README.md says more.
 */
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { DistributedJob, JobContext, SchedulerModule } from 'nestjs-distributed-scheduler';
import { SweepManager } from 'nestjs-distributed-scheduler/records';
import { TestDatabase } from '../test/support/databases';
import { percentile } from './stats';
import { printTable } from './table';

/** Lag workloads: one job firing alone, and a burst of jobs due at the same moment. */
const LAG_WORKLOADS = [
  { label: '1 job every 100 ms', jobs: 1, everyMs: 100 },
  { label: '20 jobs every 500 ms, due together', jobs: 20, everyMs: 500 },
];
const LAG_WARMUP_MS = 2_000;
const LAG_MEASURE_MS = 15_000;
const THROUGHPUT_RUNS = 5_000;
const THROUGHPUT_CONCURRENCY = 32;
const SWEEP_EXECUTIONS = 100_000;

const lags: number[] = [];
let measuring = false;

/** A provider of `jobs` jobs made at run time, as bench/replica.ts does; each records how late it started. */
function lagJobs(jobs: number, everyMs: number): Function {
  @Injectable()
  class LagJobs {}
  for (let i = 0; i < jobs; i++) {
    const key = `job${i}`;
    Object.defineProperty(LagJobs.prototype, key, {
      // performance.now() for sub-millisecond starts; scheduledAt is whole milliseconds.
      value: (ctx: JobContext) => measuring && lags.push(performance.timeOrigin + performance.now() - ctx.scheduledAt.getTime()),
      configurable: true,
    });
    DistributedJob({ name: `lag-${i}`, every: everyMs })(LagJobs.prototype, key, Object.getOwnPropertyDescriptor(LagJobs.prototype, key)!);
  }
  return LagJobs;
}

@Injectable()
class OnDemand {
  @DistributedJob({ name: 'bench.on-demand' })
  run() {}
}

function appModule(db: TestDatabase, records: boolean, providers: Function[]) {
  @Module({
    imports: [
      TypeOrmModule.forRoot({ ...db.options, autoLoadEntities: true, synchronize: true, poolSize: 10 } as never),
      SchedulerModule.forRoot({ minPeriod: 100, records: records ? { sweepEvery: false } : false }),
    ],
    providers: providers as never[],
  })
  class BenchRecordsModule {}
  return BenchRecordsModule;
}

interface LagFigures {
  runs: number;
  p50: number;
  p99: number;
  max: number;
}

/** Lag from due time to handler start on the embedded coordinator (one process), with or without records. */
async function measureLag(db: TestDatabase, records: boolean, jobs: Function): Promise<LagFigures> {
  lags.length = 0;
  const app = await NestFactory.createApplicationContext(appModule(db, records, [jobs]), { logger: ['error', 'warn'] });
  await new Promise((resolve) => setTimeout(resolve, LAG_WARMUP_MS));
  measuring = true;
  await new Promise((resolve) => setTimeout(resolve, LAG_MEASURE_MS));
  measuring = false;
  await app.close();
  const sorted = [...lags].sort((a, b) => a - b);
  const round = (ms: number) => Number(ms.toFixed(1));
  return { runs: sorted.length, p50: round(percentile(sorted, 50)), p99: round(percentile(sorted, 99)), max: round(sorted[sorted.length - 1]) };
}

/** Runs recorded per second: each is an Execution and a Task written at start and ended as Success. */
async function measureThroughput(db: TestDatabase): Promise<{ runs: number; seconds: number; perSecond: number }> {
  const app = await NestFactory.createApplicationContext(appModule(db, true, [OnDemand]), { logger: ['error', 'warn'] });
  // The recorder the orchestrator uses (from the build, like the package), driven directly so that the figure is the database's.
  const { RunRecorder } = await import('../dist/scheduling/run-recorder');
  const { JobRegistry } = await import('../dist/scheduling/job.registry');
  const recorder = app.get(RunRecorder);
  const job = app.get(JobRegistry).get('bench.on-demand')!;
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: THROUGHPUT_CONCURRENCY }, async () => {
      while (next < THROUGHPUT_RUNS) {
        const token = ++next;
        const now = new Date();
        const record = await recorder.start({ job, trigger: 'MANUAL', scheduledAt: now, startedAt: now, fencingToken: token, instanceId: 'bench' });
        await record!.finish({ status: 'success', error: null });
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await app.close();
  return { runs: THROUGHPUT_RUNS, seconds, perSecond: THROUGHPUT_RUNS / seconds };
}

/** Time to sweep 100,000 final executions, each with a task and a log. */
async function measureSweep(db: TestDatabase): Promise<{ executions: number; seconds: number }> {
  const app = await NestFactory.createApplicationContext(appModule(db, true, []), { logger: ['error', 'warn'] });
  const source = app.get(DataSource);
  await source.query(
    `INSERT INTO dsched_execution (vendor_type, status, trigger, extra_attrs, start_time, update_time, end_time)
     SELECT 'swept', 'Success', 'SCHEDULE', '{}', now(), now(), now() FROM generate_series(1, ${SWEEP_EXECUTIONS})`,
  );
  await source.query(
    `INSERT INTO dsched_task (vendor_type, execution_id, job_name, parameters, status, run_count, job_id, extra_attrs, creation_time, update_time, status_revision, fencing_token)
     SELECT 'swept', id, 'swept', '{}', 'Success', 1, 'swept-' || id, '{}', now(), now(), 1, 1 FROM dsched_execution WHERE vendor_type = 'swept'`,
  );
  await source.query(`INSERT INTO dsched_task_log (task_id, content, dropped_lines, update_time) SELECT id, 'a line of log', 0, now() FROM dsched_task WHERE vendor_type = 'swept'`);
  await source.query('ANALYZE');
  const sweep = app.get(SweepManager);
  const started = process.hrtime.bigint();
  const deleted = await sweep.clean(await sweep.listCandidates('swept', 0));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await app.close();
  if (deleted !== SWEEP_EXECUTIONS) throw new Error(`The sweep deleted ${deleted} executions, not ${SWEEP_EXECUTIONS}.`);
  return { executions: deleted, seconds };
}

async function main(): Promise<void> {
  const db = await TestDatabase.create('postgres');
  try {
    const lag = [];
    for (const workload of LAG_WORKLOADS) {
      const jobs = lagJobs(workload.jobs, workload.everyMs);
      const without = await measureLag(db, false, jobs);
      const withRecords = await measureLag(db, true, jobs);
      lag.push({ ...workload, without, withRecords, addedP50: Number((withRecords.p50 - without.p50).toFixed(1)) });
    }
    const throughput = await measureThroughput(db);
    const sweep = await measureSweep(db);
    printTable(
      'Records on PostgreSQL: lag from due time to handler start, one process (ms)',
      ['workload', 'records', 'runs', 'p50', 'p99', 'max', 'added p50'],
      lag.flatMap((row) => [
        [row.label, 'without', row.without.runs, row.without.p50, row.without.p99, row.without.max, ''],
        [row.label, 'with', row.withRecords.runs, row.withRecords.p50, row.withRecords.p99, row.withRecords.max, row.addedP50],
      ]),
      2,
    );
    console.log('target: recording adds under 2 ms at p50');
    printTable('Records on PostgreSQL: throughput and sweep', ['figure', 'value'], [
      [`runs recorded per second (execution + task, start and end; ${THROUGHPUT_CONCURRENCY} at a time)`, Math.round(throughput.perSecond)],
      [`time to sweep ${SWEEP_EXECUTIONS.toLocaleString('en')} executions with their tasks and logs (s)`, Number(sweep.seconds.toFixed(1))],
    ]);
    const dir = join(__dirname, 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `records-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify({ at: new Date(), machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model }, lag, throughput, sweep }, null, 2));
    console.log(`\nResults: ${file}`);
  } finally {
    await db.drop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
