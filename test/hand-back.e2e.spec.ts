import type { ReplicaMessage } from './fixtures/replica.main';
import { BACKUP_CLAIM_DELAY_MS } from '../lib/scheduler.constants';
import { preferredReplica } from '../lib/scheduling/preferred-replica';
import { Replica, RunEvent } from './support/replica';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';
import { EventLog } from './support/wait';

/**
 * Hand-back at shutdown: a replica that is told to stop leaves the live set before it drains its
 * runs, so the other replicas serve its jobs' next due times on time, not as backups.
 */
describe('a replica shutting down while it drains a long run', () => {
  jest.setTimeout(60_000);
  const log = new EventLog<ReplicaMessage>();
  const replicas: Replica[] = [];
  afterAll(async () => {
    await Promise.all(replicas.map((replica) => replica.kill()));
  });

  it('lets the others claim its jobs at their due times during the drain', async () => {
    const keyPrefix = uniquePrefix('hand-back');
    // The stopping replica is the preferred one of the 1 s job: without the hand-back, the other
    // replica claims each of its fires as a backup, BACKUP_CLAIM_DELAY_MS after the due time.
    const [stopping, staying] = preferredReplica('tick', ['a', 'b']) === 'a' ? ['a', 'b'] : ['b', 'a'];
    const jobs = [{ name: 'tick', every: 1_000 }, { name: 'long', busyMs: 12_000 }];
    const options = { redisUrl: SHARED_REDIS_URL, keyPrefix, jobs, shutdownTimeout: 20_000 };
    const first = await Replica.start({ ...options, instanceId: stopping }, log);
    replicas.push(first);
    // Alone in the cluster, so the long run is on it.
    await first.call('trigger', 'long');
    const long = await log.until('the long run', (events) => events.find((e): e is RunEvent => e.type === 'run' && e.name === 'long'));
    replicas.push(await Replica.start({ ...options, instanceId: staying }, log));
    const stopAt = Date.now();
    // Its IPC channel closes now (that is how it is told to stop): its process exits once the long run has ended.
    await first.stop(30_000);
    const endAt = Date.now();
    expect(endAt).toBeGreaterThanOrEqual(long.startedAt + 12_000 - 50);

    const duringDrain = log.events.filter((e): e is RunEvent => e.type === 'run' && e.name === 'tick' && e.scheduledAt > stopAt + 100 && e.scheduledAt < endAt - 100);
    expect(duringDrain.length).toBeGreaterThanOrEqual(2);
    for (const run of duringDrain) {
      expect(run.instanceId).toBe(staying);
      // A backup cannot start before due + BACKUP_CLAIM_DELAY_MS: starting earlier means it claimed as the preferred replica.
      expect(run.startedAt - run.scheduledAt).toBeLessThan(BACKUP_CLAIM_DELAY_MS);
    }
  });

  it('hands a run still going at its shutdownTimeout back: another replica resumes it at once as its next attempt, not after lockTtl', async () => {
    const keyPrefix = uniquePrefix('hand-back-run');
    const lockTtl = 30_000;
    const jobs = [{ name: 'slow', busyMs: 60_000 }];
    const options = { redisUrl: SHARED_REDIS_URL, keyPrefix, jobs, lockTtl, shutdownTimeout: 500 };
    const first = await Replica.start({ ...options, instanceId: 'leaving' }, log);
    replicas.push(first);
    await first.call('trigger', 'slow');
    const runsOfSlow = (events: ReplicaMessage[]) => events.filter((e): e is RunEvent => e.type === 'run' && e.name === 'slow');
    const [handed] = await log.until('the slow run', (events) => (runsOfSlow(events).length > 0 ? runsOfSlow(events) : undefined));
    replicas.push(await Replica.start({ ...options, instanceId: 'staying' }, log));
    const stopAt = Date.now();
    await first.stop();
    const resumed = await log.until('the slow run resumed', (events) => runsOfSlow(events).find((run) => run.instanceId === 'staying'));
    expect(resumed).toMatchObject({ scheduledAt: handed.scheduledAt, attempt: handed.attempt + 1, trigger: handed.trigger });
    expect(resumed.fencingToken).toBeGreaterThan(handed.fencingToken);
    // Without the hand-back, its lease would have held the run for lockTtl (then recovered, or lost).
    expect(resumed.at - stopAt).toBeLessThan(lockTtl / 3);
  });
});
