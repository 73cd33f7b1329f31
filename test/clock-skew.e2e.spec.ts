import type { FixtureJob, ReplicaMessage } from './fixtures/replica.main';
import { preferredReplica } from '../lib/scheduling/preferred-replica';
import { skewedClockEnv } from './support/faketime';
import { Replica, RunEvent } from './support/replica';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';
import { EventLog } from './support/wait';

/**
 * Replicas as real processes, one of them on a skewed clock (libfaketime): due times are on
 * Redis's clock, so a replica ahead neither loses fires nor runs them early, a replica behind
 * runs its share on time, and a runtime control from it cannot set a served fire again.
 */
describe('a replica with a skewed clock', () => {
  jest.setTimeout(120_000);
  const log = new EventLog<ReplicaMessage>();
  const replicas: Replica[] = [];
  const runsOf = (predicate: (run: RunEvent) => boolean = () => true) =>
    log.events.filter((event): event is RunEvent => event.type === 'run' && predicate(event));

  afterEach(async () => {
    await Promise.all(replicas.splice(0).map((replica) => replica.kill()));
    log.events.length = 0;
  });

  async function start(instanceId: string, keyPrefix: string, jobs: FixtureJob[], clockOffset?: string): Promise<Replica> {
    const env = clockOffset ? skewedClockEnv(clockOffset) : undefined;
    const replica = await Replica.start({ redisUrl: SHARED_REDIS_URL, keyPrefix, instanceId, jobs, minPeriod: 100, env }, log);
    replicas.push(replica);
    return replica;
  }

  function expectEachDueTimeOnceAndNeverEarly(runs: RunEvent[]): void {
    const keys = runs.map((run) => `${run.name}@${run.scheduledAt}`);
    expect(new Set(keys).size).toBe(keys.length);
    // ctx.startedAt and ctx.scheduledAt are on one clock (Redis's), on every replica.
    for (const run of runs) expect(run.startedAt).toBeGreaterThanOrEqual(run.scheduledAt);
  }

  it('5 s ahead: its first due times are Redis’s, so no fire is lost and none runs early', async () => {
    const prefix = uniquePrefix('skew-ahead');
    const jobs = [{ name: 'fast', every: 500 }];
    // The replica ahead registers the job, and so computes its first due time.
    await start('ahead', prefix, jobs, '+5s');
    const registeredBy = Date.now();
    await start('r1', prefix, jobs);

    const runs = await log.until('10 runs of fast', () => runsOf().length >= 10 && runsOf());
    const scheduled = runs.map((run) => run.scheduledAt).sort((a, b) => a - b);
    // Computed on its own clock the first fire would be 5.5 s away, and 11 fires lost.
    expect(scheduled[0]).toBeLessThan(registeredBy + 2_000);
    for (let i = 1; i < scheduled.length; i++) expect(scheduled[i] - scheduled[i - 1]).toBe(500);
    expectEachDueTimeOnceAndNeverEarly(runs);
  });

  it('5 s behind: it learns Redis’s clock from every reply, runs the jobs it is preferred for, on time', async () => {
    const prefix = uniquePrefix('skew-behind');
    const members = ['r1', 'r2', 'behind'];
    const names = Array.from({ length: 9 }, (_, i) => `job-${i}`);
    const preferred = names.filter((name) => preferredReplica(name, members) === 'behind');
    expect(preferred.length).toBeGreaterThan(0);
    const jobs = names.map((name) => ({ name, every: 500 }));
    await start('r1', prefix, jobs);
    await start('r2', prefix, jobs);
    await start('behind', prefix, jobs, '-5s');
    const allUp = Date.now();

    // Once every replica knows the live set, the preferred replica claims at the due time and the others 100 ms later.
    const settled = (run: RunEvent) => preferred.includes(run.name) && run.scheduledAt > allUp + 2_000;
    const runs = await log.until('6 runs of each job preferred by the replica behind', () => runsOf(settled).length >= 6 * preferred.length && runsOf(settled));
    const onBehind = runs.filter((run) => run.instanceId === 'behind');
    // Learning only from claims it won, it would never win one: it woke 5 s late for every fire.
    expect(onBehind.length).toBeGreaterThanOrEqual(runs.length / 2);
    for (const run of runsOf((run) => run.instanceId === 'behind')) expect(run.startedAt - run.scheduledAt).toBeLessThan(1_000);
    expectEachDueTimeOnceAndNeverEarly(runsOf());
  });

  it('2 s behind: reset() right after a fire does not set that fire again', async () => {
    const prefix = uniquePrefix('skew-reset');
    const jobs = [{ name: 'every-3s', cron: '*/3 * * * * *' }];
    await start('r1', prefix, jobs);
    const behind = await start('behind', prefix, jobs, '-2s');

    const upAt = Date.now();
    const fired = await log.until('a fire after both replicas are up', () => runsOf((run) => run.scheduledAt > upAt)[0]);
    // By its own clock the fire is 2 s ahead: computed from it, the next cron time would be that fire.
    await behind.call('reset', 'every-3s');
    await log.until('the next fire', () => runsOf((run) => run.scheduledAt > fired.scheduledAt)[0], 15_000);
    expect(runsOf((run) => run.scheduledAt === fired.scheduledAt)).toHaveLength(1);
    expectEachDueTimeOnceAndNeverEarly(runsOf());
  });
});
