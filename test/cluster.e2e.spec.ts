import type { ReplicaMessage } from './fixtures/replica.main';
import { Replica, RunEvent } from './support/replica';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';
import { EventLog } from './support/wait';

/**
 * Three replicas as real Node processes on one Redis: each due time runs once across them, and
 * runtime controls issued on one replica act on all.
 */
describe('three replicas on one Redis', () => {
  jest.setTimeout(120_000);
  const log = new EventLog<ReplicaMessage>();
  const replicas: Replica[] = [];
  const runsOf = (name: string, events = log.events) =>
    events.filter((event): event is RunEvent => event.type === 'run' && event.name === name);

  afterEach(async () => {
    await Promise.all(replicas.splice(0).map((replica) => replica.kill()));
    log.events.length = 0;
  });

  async function startReplicas(keyPrefix: string, options: Omit<Parameters<typeof Replica.start>[0], 'redisUrl' | 'keyPrefix' | 'instanceId'>) {
    replicas.push(
      ...(await Promise.all(
        ['r1', 'r2', 'r3'].map((instanceId) => Replica.start({ ...options, redisUrl: SHARED_REDIS_URL, keyPrefix, instanceId }, log)),
      )),
    );
  }

  it('runs each due time exactly once, with increasing fencing tokens, and applies controls from any replica', async () => {
    await startReplicas(uniquePrefix('cluster'), {
      minPeriod: 100,
      jobs: [
        { name: 'tick', every: 500 },
        { name: 'clock', cron: '* * * * * *' },
        { name: 'on-demand' },
      ],
    });
    const [r1, r2, r3] = replicas;

    // Scheduled runs, shared by the replicas.
    await log.until('12 runs of tick', () => runsOf('tick').length >= 12);

    // trigger on r1: one run, somewhere.
    await r1.call('trigger', 'on-demand');
    const manual = await log.until('the manual run', () => runsOf('on-demand')[0]);
    expect(manual.trigger).toBe('MANUAL');

    // pause on r2: no replica runs tick afterwards; the clock job measures the time that passes.
    await r2.call('pause', 'tick');
    const pausedAt = Date.now();
    const clockBefore = runsOf('clock').length;
    await log.until('2 more seconds of clock', () => runsOf('clock').length >= clockBefore + 2);
    expect(runsOf('tick').filter((run) => run.scheduledAt > pausedAt)).toEqual([]);

    // resume on r3: tick runs again.
    await r3.call('resume', 'tick');
    const resumedAt = Date.now();
    await log.until('a run of tick after resume', () => runsOf('tick').some((run) => run.scheduledAt > resumedAt));

    // updateSchedule on r1: every replica follows the new period.
    await r1.call('updateSchedule', 'tick', { every: 1000 });
    const updatedAt = Date.now();
    const afterUpdate = await log.until('3 runs of tick on the new schedule', () => {
      const runs = runsOf('tick').filter((run) => run.scheduledAt > updatedAt);
      return runs.length >= 3 && runs;
    });
    expect(afterUpdate[1].scheduledAt - afterUpdate[0].scheduledAt).toBe(1000);
    expect(afterUpdate[2].scheduledAt - afterUpdate[1].scheduledAt).toBe(1000);
    expect((await r2.call<{ schedule: unknown }>('describe', 'tick')).schedule).toEqual({ every: 1000, jitter: 0 });

    for (const name of ['tick', 'clock']) {
      const runs = runsOf(name);
      // Never twice, never early.
      expect(new Set(runs.map((run) => run.scheduledAt)).size).toBe(runs.length);
      for (const run of runs) expect(run.startedAt).toBeGreaterThanOrEqual(run.scheduledAt);
      // Fencing tokens increase with every run, in the order the runs were scheduled.
      const byTime = [...runs].sort((a, b) => a.scheduledAt - b.scheduledAt);
      for (let i = 1; i < byTime.length; i++) expect(byTime[i].fencingToken).toBeGreaterThan(byTime[i - 1].fencingToken);
    }
    // None lost: the cron job ran every second of the test, across whichever replicas won.
    const clock = runsOf('clock').map((run) => run.scheduledAt).sort((a, b) => a - b);
    for (let i = 1; i < clock.length; i++) expect(clock[i] - clock[i - 1]).toBe(1000);
    const tickBeforePause = runsOf('tick').filter((run) => run.scheduledAt <= pausedAt).map((run) => run.scheduledAt);
    for (let i = 1; i < tickBeforePause.length; i++) expect(tickBeforePause[i] - tickBeforePause[i - 1]).toBe(500);
  });

  it('lets another replica take over within lockTtl when the one running a job is killed', async () => {
    const lockTtl = 2000;
    await startReplicas(uniquePrefix('failover'), { lockTtl, jobs: [{ name: 'long', every: 2000, busyMs: 60_000 }] });

    const first = await log.until('the first run of long', () => runsOf('long')[0]);
    const victim = replicas.find((replica) => replica.instanceId === first.instanceId)!;
    await victim.kill();
    const killedAt = Date.now();

    const next = await log.until('a run of long on another replica', () => runsOf('long').find((run) => run.fencingToken !== first.fencingToken), 20_000);
    expect(next.instanceId).not.toBe(first.instanceId);
    expect(next.fencingToken).toBeGreaterThan(first.fencingToken);
    // The lease runs out at most lockTtl after the kill; the next due time is at most one period later.
    expect(next.startedAt - killedAt).toBeLessThanOrEqual(lockTtl + 2000 + 500);
    // While the killed replica held the lock, nobody else ran the job.
    expect(runsOf('long').filter((run) => run.startedAt < killedAt)).toEqual([first]);
  });
});
