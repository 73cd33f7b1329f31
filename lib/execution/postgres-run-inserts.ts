import type { EntityManager } from 'typeorm';
import { TickBatcher } from '../scheduling/tick-batcher';
import type { ExecutionTrigger } from './execution.constants';
import { ONE_RUNNING_TASK } from './execution-status';
import { Execution } from './execution.entity';
import { Task } from './task.entity';

/** A run's records to create as it starts. */
export interface RunInsert {
  vendorType: string;
  jobName: string;
  trigger: ExecutionTrigger;
  startedAt: Date;
  scheduledAt: Date;
  dueAt: Date | null;
  fencingToken: number;
  revision: number;
  jobId: string;
  instanceId: string;
  /** The execution's extra attributes: `{ catchUp: true }` for a catch-up run, else none. */
  executionAttrs: Record<string, unknown>;
}

export interface InsertedRun {
  executionId: number;
  taskId: number;
}

const COLUMNS = 11;
/** Runs per statement: each size is a prepared statement of its own, so their number stays bounded. */
const MAX_BATCH = 50;

/** The part of node-postgres's pool used here: named (prepared) statements. */
interface PgPool {
  query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: { id: string; execution_id: string; job_name: string; fencing_token: string }[] }>;
}

/**
 * The start of runs on PostgreSQL in one statement per event-loop turn: every run that starts in
 * the same turn (the fires of one wake-up) gets its Execution and Task in a single round trip, which
 * is what keeps recording off the scheduling lag. A run whose due time is already recorded comes
 * back null (`ON CONFLICT DO NOTHING` on the unique job + due time).
 */
export class PostgresRunInserts {
  private readonly batcher = new TickBatcher<RunInsert, InsertedRun | null>((runs) => this.insert(runs));
  private timestampType?: Promise<string>;

  constructor(private readonly manager: EntityManager) {}

  add(run: RunInsert): Promise<InsertedRun | null> {
    return this.batcher.add(run);
  }

  private async insert(runs: RunInsert[]): Promise<(InsertedRun | null)[]> {
    // One statement after another: splitting a burst over several connections measured no faster.
    const results: (InsertedRun | null)[] = [];
    for (let i = 0; i < runs.length; i += MAX_BATCH) results.push(...(await this.insertBatch(runs.slice(i, i + MAX_BATCH))));
    return results;
  }

  private async insertBatch(runs: RunInsert[]): Promise<(InsertedRun | null)[]> {
    const ts = await this.columnType();
    const params: unknown[] = [];
    const rows = runs.map((run) => {
      const at = params.length;
      params.push(
        run.vendorType,
        run.jobName,
        run.trigger,
        run.startedAt,
        run.scheduledAt,
        run.dueAt,
        run.fencingToken,
        run.revision,
        run.jobId,
        JSON.stringify({ instanceId: run.instanceId }),
        JSON.stringify(run.executionAttrs),
      );
      const p = (i: number) => `$${at + i + 1}`;
      return `(${p(0)}::varchar, ${p(1)}::varchar, ${p(2)}::varchar, ${p(3)}::${ts}, ${p(4)}::${ts}, ${p(5)}::${ts}, ${p(6)}::bigint, ${p(7)}::bigint, ${p(8)}::varchar, ${p(9)}::text, ${p(10)}::text)`;
    });
    params.push(JSON.stringify(ONE_RUNNING_TASK));
    const metrics = `$${runs.length * COLUMNS + 1}`;
    // Straight to the driver's pool, as a prepared statement: this runs before every handler starts.
    const pool = (this.manager.connection.driver as unknown as { master: PgPool }).master;
    const { rows: rowsOut } = await pool.query({
      name: `dsched_start_${ts}_${runs.length}`,
      text: `WITH input (vendor_type, job_name, trigger, started, scheduled_at, due_at, fencing_token, revision, job_id, extra, execution_extra) AS (VALUES ${rows.join(', ')}),
       execution AS (
         INSERT INTO ${this.table(Execution)} (vendor_type, status, metrics, trigger, extra_attrs, start_time, update_time, job_name, scheduled_at, due_at, fencing_token)
         SELECT vendor_type, 'Running', ${metrics}, trigger, execution_extra, started, started, job_name, scheduled_at, due_at, fencing_token FROM input
         ON CONFLICT DO NOTHING
         RETURNING id, job_name, fencing_token)
       INSERT INTO ${this.table(Task)} (vendor_type, execution_id, job_name, parameters, status, run_count, job_id, extra_attrs, creation_time, start_time, update_time, status_revision, fencing_token)
       SELECT i.vendor_type, e.id, i.job_name, '{}', 'Running', 1, i.job_id, i.extra, i.started, i.started, i.started, i.revision, i.fencing_token
       FROM execution e JOIN input i ON i.job_name = e.job_name AND i.fencing_token = e.fencing_token
       RETURNING id, execution_id, job_name, fencing_token`,
      values: params,
    });
    const inserted = new Map(rowsOut.map((row) => [`${row.job_name}#${row.fencing_token}`, { executionId: Number(row.execution_id), taskId: Number(row.id) }]));
    return runs.map((run) => inserted.get(`${run.jobName}#${run.fencingToken}`) ?? null);
  }

  /**
   * The time columns' own type: `timestamp` from `synchronize`, `timestamptz` from the shipped
   * migration. Casting to it makes PostgreSQL read the values exactly as TypeORM's own writes are read.
   */
  private columnType(): Promise<string> {
    this.timestampType ??= (async () => {
      const metadata = this.manager.connection.getMetadata(Execution);
      const [row]: { data_type: string }[] = await this.manager.query(
        `SELECT data_type FROM information_schema.columns WHERE table_name = $1 AND column_name = 'start_time' AND table_schema = COALESCE($2, current_schema())`,
        [metadata.tableName, metadata.schema ?? null],
      );
      return row?.data_type === 'timestamp with time zone' ? 'timestamptz' : 'timestamp';
    })().catch((error) => {
      this.timestampType = undefined;
      throw error;
    });
    return this.timestampType;
  }

  private table(entity: Function): string {
    const { driver } = this.manager.connection;
    return this.manager.connection.getMetadata(entity).tablePath.split('.').map((part) => driver.escape(part)).join('.');
  }
}
