import { INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { ExecutionNotFinalError, InvalidQueryError, SchedulerError, SchedulerModule } from '../lib';
import { ExecutionManager, ExecutionQuery, SweepManager, TaskManager, TaskQuery } from '../lib/records';
import { CapturingLogger } from './support/app';
import { DATABASE_KINDS, TestDatabase } from './support/databases';

/**
 * Values of a records query often come straight from a request. None of them may change the SQL:
 * names are taken from fixed lists, values are bound, and a value of the wrong kind is refused
 * before any statement runs, with an error naming the field and the value.
 */
describe.each(DATABASE_KINDS)('records queries refuse what would reach SQL on %s', (kind) => {
  let db: TestDatabase;
  let app: INestApplicationContext;
  let executions: ExecutionManager;
  let tasks: TaskManager;
  let sweep: SweepManager;
  let dataSource: DataSource;
  /** Statements sent to the database since `statements.length = 0`. */
  const statements: string[] = [];

  beforeAll(async () => {
    db = await TestDatabase.create(kind);
    const logger = new CapturingLogger();
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({
          ...db.options,
          autoLoadEntities: true,
          synchronize: true,
          logging: ['query'],
          logger: { logQuery: (query: string) => void statements.push(query), logQueryError() {}, logQuerySlow() {}, logSchemaBuild() {}, logMigration() {}, log() {} },
        }),
        SchedulerModule.forRoot({ records: { sweepEvery: false } }),
      ],
    })
      .setLogger(logger)
      .compile();
    moduleRef.useLogger(logger);
    await moduleRef.init();
    app = moduleRef;
    executions = app.get(ExecutionManager);
    tasks = app.get(TaskManager);
    sweep = app.get(SweepManager);
    dataSource = app.get(DataSource);
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  /** Expects `call` to throw `InvalidQueryError` for `field` and `value` without sending any statement. */
  async function refused(call: () => Promise<unknown>, field: string, value: unknown): Promise<InvalidQueryError> {
    statements.length = 0;
    const error = await call().then(
      () => null,
      (thrown: unknown) => thrown,
    );
    expect(error).toBeInstanceOf(InvalidQueryError);
    expect(error).toBeInstanceOf(SchedulerError);
    const invalid = error as InvalidQueryError;
    expect({ field: invalid.field, value: invalid.value }).toEqual({ field, value });
    expect(invalid.message).toContain(`"${field}"`);
    expect(statements).toEqual([]);
    return invalid;
  }

  it('refuses a sort field or order that is not a column name, naming it, and runs nothing', async () => {
    const id = await executions.create('injection', null, 'MANUAL');
    const attack = kind === 'postgres' ? 'id, (SELECT 1 FROM pg_sleep(2))' : kind === 'mariadb' ? 'id, (SELECT SLEEP(2))' : 'id, (SELECT 1)';
    const error = await refused(() => executions.list({ sort: { field: attack as 'id' } }), 'sort.field', attack);
    expect(error.message).toBe(
      `ExecutionManager.list: "sort.field" has an invalid value '${attack}': expected one of 'id', 'startTime', 'endTime', 'updateTime', 'status'`,
    );
    await refused(() => tasks.list({ sort: { field: 'id; DROP TABLE dsched_task' as 'id' } }), 'sort.field', 'id; DROP TABLE dsched_task');
    await refused(() => executions.list({ sort: { field: 'creationTime' as 'id' } }), 'sort.field', 'creationTime');
    await refused(() => executions.list({ sort: { field: 'id', order: 'ASC, (SELECT 1)' as 'ASC' } }), 'sort.order', 'ASC, (SELECT 1)');
    await refused(() => executions.list({ sort: { field: 'id', order: 'asc' as 'ASC' } }), 'sort.order', 'asc');
    await refused(() => executions.list({ sort: 'id' as unknown as ExecutionQuery['sort'] }), 'sort', 'id');
    // Every allowed field and order still sorts.
    for (const field of ['id', 'startTime', 'endTime', 'updateTime', 'status'] as const) {
      for (const order of ['ASC', 'DESC'] as const) expect((await executions.list({ vendorType: 'injection', sort: { field, order } })).map((e) => e.id)).toEqual([id]);
    }
    for (const field of ['id', 'creationTime', 'startTime', 'endTime', 'updateTime', 'status'] as const) {
      expect(await tasks.list({ vendorType: 'injection', sort: { field } })).toEqual([]);
    }
  });

  it('binds extraAttrs keys and values: a key or value written as SQL matches only itself', async () => {
    const keys = ["a') OR 1=1 --", "it's", 'say "hi"', 'back\\slash', 'dot.ted', '$', '[0]', '*', 'ünï cödé', 'a\nb', "' OR ''='"];
    const byKey = new Map<string, number>();
    for (const key of keys) byKey.set(key, await executions.create('attr-keys', null, 'MANUAL', { [key]: 'yes', other: key }));
    const matching = async (extraAttrs: Record<string, string>) =>
      (await executions.list({ vendorType: 'attr-keys', extraAttrs, pageSize: 100 })).map((e) => e.id);
    for (const key of keys) expect({ key, ids: await matching({ [key]: 'yes' }) }).toEqual({ key, ids: [byKey.get(key)] });
    expect(await matching({ other: "x' OR '1'='1" })).toEqual([]);
    expect(await matching({ "other') OR ('1'='1": 'yes' })).toEqual([]);
    expect(await executions.count({ vendorType: 'attr-keys', extraAttrs: { other: 'dot.ted' } })).toBe(1);
  });

  it('refuses filters of the wrong kind: unknown names, values that are not of their type, wrong pages', async () => {
    const list = (query: unknown) => () => executions.list(query as ExecutionQuery);
    const listTasks = (query: unknown) => () => tasks.list(query as TaskQuery);
    await refused(list({ page: '1; DROP TABLE dsched_execution' }), 'page', '1; DROP TABLE dsched_execution');
    await refused(list({ page: 0 }), 'page', 0);
    await refused(list({ page: 1.5 }), 'page', 1.5);
    await refused(list({ page: 2 ** 60 }), 'page', 2 ** 60);
    await refused(list({ pageSize: Number.NaN }), 'pageSize', Number.NaN);
    await refused(list({ pageSize: '20' }), 'pageSize', '20');
    await refused(list({ status: 'Done' }), 'status', 'Done');
    await refused(list({ status: ['Success', "Success') OR ('1'='1"] }), 'status', "Success') OR ('1'='1");
    await refused(list({ trigger: 'CRON' }), 'trigger', 'CRON');
    // An object bound as a value is expanded to `column` = value pairs by mysql2.
    await refused(list({ vendorType: { vendor_type: 'injection' } }), 'vendorType', { vendor_type: 'injection' });
    await refused(list({ vendorType: ['a', 'b'] }), 'vendorType', ['a', 'b']);
    await refused(list({ vendorId: { id: 1 } }), 'vendorId', { id: 1 });
    await refused(list({ jobName: 7 }), 'jobName', 7);
    await refused(list({ startTime: { from: '2026-01-01' } }), 'startTime.from', '2026-01-01');
    await refused(list({ endTime: { to: new Date('nope') } }), 'endTime.to', expect.any(Date));
    await refused(list({ startTime: { since: new Date() } }), 'startTime.since', expect.any(Date));
    await refused(list({ extraAttrs: { team: { $ne: 'x' } } }), 'extraAttrs.team', { $ne: 'x' });
    await refused(list({ extraAttrs: { '': 'x' } }), 'extraAttrs key', '');
    await refused(list({ extraAttrs: 'team=red' }), 'extraAttrs', 'team=red');
    // A filter name no execution has (here a task's, and a typo) is an error, not "no filter".
    await refused(list({ executionId: 1 }), 'executionId', 1);
    await refused(list({ vendortype: 'x' }), 'vendortype', 'x');
    await refused(listTasks({ executionId: '1 OR 1=1' }), 'executionId', '1 OR 1=1');
    await refused(listTasks({ trigger: 'MANUAL' }), 'trigger', 'MANUAL');
    await refused(() => tasks.count({ status: 'Running; --' } as unknown as TaskQuery), 'status', 'Running; --');
    // Unset filters (undefined) are no filter, as before.
    expect(await executions.count({ vendorType: undefined, status: undefined, page: undefined } as ExecutionQuery)).toBeGreaterThanOrEqual(0);
  });

  it('refuses ids, statuses and counts of the wrong kind in every other call that reaches SQL', async () => {
    const id = await executions.create('arguments', 'v1', 'MANUAL');
    const asAny = (value: unknown) => value as number;
    await refused(() => executions.get(asAny('1 OR 1=1')), 'id', '1 OR 1=1');
    await refused(() => executions.delete(asAny(`${id}`)), 'id', `${id}`);
    await refused(() => executions.stop(asAny(-1)), 'id', -1);
    await refused(() => executions.markDone(asAny({ id })), 'id', { id });
    await refused(() => executions.markError(asAny(null), 'x'), 'id', null);
    await refused(() => executions.updateExtraAttrs(id, asAny('x') as never), 'extraAttrs', 'x');
    await refused(() => executions.create('arguments', null, asAny('CRON') as never), 'trigger', 'CRON');
    await refused(() => executions.create(asAny({ vendor_type: 'x' }) as never, null, 'MANUAL'), 'vendorType', { vendor_type: 'x' });
    await refused(() => executions.deleteByVendor('arguments', asAny({ vendor_id: 'v1' }) as never), 'vendorId', { vendor_id: 'v1' });
    await refused(() => executions.stopAndWait(id, asAny('1s')), 'timeoutMs', '1s');
    await refused(() => tasks.get(asAny('2; DELETE FROM dsched_task')), 'id', '2; DELETE FROM dsched_task');
    await refused(() => tasks.getLog(asAny(1.5)), 'id', 1.5);
    await refused(() => tasks.getLogByJobId(asAny({ job_id: 'x' }) as never), 'jobId', { job_id: 'x' });
    await refused(() => tasks.create(asAny('1'), { name: 'x' }), 'executionId', '1');
    // The status is written only through the status change handler, never by `update`.
    await refused(() => tasks.update({ id: 1, status: 'Success' }, ['status' as 'statusMessage']), 'fields', 'status');
    await refused(() => tasks.updateStatusInBatch(['a'], asAny('Done') as never), 'status', 'Done');
    await refused(() => tasks.updateStatusInBatch(asAny('a,b') as never, 'Stopped'), 'jobIds', 'a,b');
    await refused(() => tasks.executionIdsByVendorAndStatus('arguments', asAny("Running' OR '1'='1") as never), 'status', "Running' OR '1'='1");
    await refused(() => sweep.listCandidates('arguments', asAny('10')), 'retainCount', '10');
    await refused(() => sweep.clean(asAny([id, '2 OR 1=1']) as never), 'executionIds[1]', '2 OR 1=1');
    await refused(() => sweep.fixDanglingStateExecution(asAny('10m')), 'pendingGraceMs', '10m');
    // Nothing was touched.
    expect((await executions.get(id)).status).toBe('Running');
    expect(await dataSource.query(kind === 'mariadb' ? 'SELECT COUNT(*) AS n FROM `dsched_task`' : 'SELECT COUNT(*) AS n FROM "dsched_task"')).toEqual([{ n: expect.anything() }]);
  });

  it('says in plain words which executions have not ended when deleting them is refused', async () => {
    const one = await executions.create('not-ended', 'one', 'MANUAL');
    await expect(executions.delete(one)).rejects.toThrow(new ExecutionNotFinalError([one], `Execution ${one} cannot be deleted`));
    await expect(executions.delete(one)).rejects.toThrow(`Execution ${one} cannot be deleted: execution ${one} has not ended yet; stop it or wait for it to end.`);
    const two = await executions.create('not-ended', 'many', 'MANUAL');
    const three = await executions.create('not-ended', 'many', 'MANUAL');
    await expect(executions.deleteByVendor('not-ended', 'many')).rejects.toThrow(
      `The executions of vendor not-ended/many cannot be deleted: executions ${two}, ${three} have not ended yet; stop them or wait for them to end.`,
    );
    const many = Array.from({ length: 12 }, (_, i) => i + 1);
    expect(new ExecutionNotFinalError(many, 'Refused').message).toBe(
      'Refused: executions 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 2 more have not ended yet; stop them or wait for them to end.',
    );
  });
});
