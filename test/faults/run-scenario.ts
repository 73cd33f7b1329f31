import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource, DataSourceOptions } from 'typeorm';
import { schedulerMigrations } from '../../lib/records';
import { TestDatabase } from '../support/databases';
import { checkHistory, CheckReport } from './checker';
import { FaultCluster } from './fault-cluster';
import { readHistory } from './history';
import { NemesisContext, sleep } from './nemeses';
import { Random, scenarioSeed } from './random';
import type { Scenario } from './scenarios';

export type ScenarioForm = 'short' | 'long';

export interface ScenarioResult {
  scenario: Scenario;
  report: CheckReport;
  /** Where its history is kept, for a look after a failure. */
  dir: string;
  /** The replicas' warnings and errors. */
  logs: string;
}

/** After the nemesis, the cluster runs undisturbed this long, so the last faults' fires settle. */
const SETTLE_MS = 2_000;

/**
 * Runs one scenario: its own Redis and replicas, the nemesis for the form's duration, then the
 * checker over the history. The replicas are killed and Redis stopped whatever happens.
 */
export async function runScenario(scenario: Scenario, form: ScenarioForm, runSeed: number): Promise<ScenarioResult> {
  const seed = scenarioSeed(runSeed, scenario.name);
  const dir = join(tmpdir(), 'dsched-faults', String(runSeed), scenario.name);
  const lockTtl = scenario.lockTtl ?? 2_000;
  const db = scenario.records ? await recordsDatabase() : null;
  const cluster = await FaultCluster.open({ name: scenario.name, seed: runSeed, dir, jobs: scenario.jobs, lockTtl, sessionTtl: scenario.sessionTtl, database: db?.options as Record<string, unknown> | undefined });
  try {
    const replicas = scenario.replicas ?? [{ instanceId: 'r1' }, { instanceId: 'r2' }, { instanceId: 'r3' }];
    await Promise.all(replicas.map((spec) => cluster.startReplica(spec)));
    // Every job has run once: the cluster is up and its cadence known before the faults begin.
    // (On-demand jobs run only once the nemesis has a replica create their tasks.)
    const expected = scenario.jobs.filter((job) => !job.onDemand);
    await cluster.events.until('a first run of every job', (events) => expected.every((job) => events.some((event) => event.job === job.name)), 30_000);
    cluster.begin();
    const ctx: NemesisContext = { cluster, random: new Random(seed), deadline: Date.now() + scenario.seconds[form] * 1000 };
    await scenario.nemesis(ctx);
    await sleep(SETTLE_MS);
    cluster.end();
  } finally {
    await cluster.close();
    // FAULTS_KEEP_DB=1 keeps the records' database, to read a failure's task rows afterwards.
    if (db && !process.env.FAULTS_KEEP_DB) await db.drop();
    else if (db) console.log(`records kept in ${JSON.stringify(db.options)}`);
  }
  const report = checkHistory(readHistory(cluster.history.file), { allow: scenario.allow, ...scenario.check });
  return { scenario, report, dir, logs: cluster.logs() };
}

/** A PostgreSQL database of the scenario's own, shared by its replicas, with the records' tables made. */
async function recordsDatabase(): Promise<TestDatabase> {
  const db = await TestDatabase.create('postgres');
  const tables = new DataSource({ ...(db.options as DataSourceOptions), migrations: schedulerMigrations('postgres') } as DataSourceOptions);
  await tables.initialize();
  await tables.runMigrations();
  await tables.destroy();
  return db;
}

/** A failure's explanation: the summary, the first violations, where the history is, what the replicas logged. */
export function describeFailure(result: ScenarioResult): string {
  const { report } = result;
  const shown = report.violations.slice(0, 12).map((violation) => `  ${violation.kind}${violation.job ? ` [${violation.job}]` : ''}: ${violation.detail}`);
  const more = report.violations.length > shown.length ? [`  … ${report.violations.length - shown.length} more`] : [];
  return [report.summary, ...shown, ...more, `history: ${result.dir}/history.jsonl`, 'replica logs:', result.logs].join('\n');
}
