import type { ClusterMember } from '../lib';
import type { ReplicaMessage } from './fixtures/replica.main';
import { Replica, RunEvent } from './support/replica';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';
import { EventLog } from './support/wait';

type MembershipMessage = Extract<ReplicaMessage, { type: 'membership' }>;
type LogMessage = Extract<ReplicaMessage, { type: 'log' }>;

const SESSION_TTL = 2_000;
/** Heartbeats go every third of the session TTL: an expiry is seen within the TTL and one beat, plus the claim of a beat in flight. */
const EXPIRY_BOUND_MS = SESSION_TTL + SESSION_TTL / 3 + 1_000;

/**
 * Four replicas as real Node processes on one Redis: an API-only one and three workers with
 * labels. Jobs with `hosts.labels` run only where the labels match, the API-only replica runs
 * nothing, `members()` shows who is who and what runs where, and every replica sees a leave at
 * shutdown and a crash (SIGKILL) as what they are.
 */
describe('cluster membership across replicas', () => {
  jest.setTimeout(120_000);
  const log = new EventLog<ReplicaMessage>();
  const replicas: Replica[] = [];
  const runsOf = (name: string) => log.events.filter((event): event is RunEvent => event.type === 'run' && event.name === name);
  const seenBy = (instanceId: string) =>
    log.events.filter((event): event is MembershipMessage => event.type === 'membership' && event.instanceId === instanceId).map((message) => message.event);
  const linesOf = (instanceId: string) => log.events.filter((event): event is LogMessage => event.type === 'log' && event.instanceId === instanceId);

  afterAll(async () => {
    await Promise.all(replicas.splice(0).map((replica) => replica.kill()));
  });

  it('runs a job only on replicas whose labels match, nothing on an API-only replica, and tells joins, runs and leaves', async () => {
    const keyPrefix = uniquePrefix('membership');
    const jobs = [
      { name: 'eu-tick', every: 1_000, hosts: { labels: { zone: 'eu' } } },
      { name: 'any-tick', every: 1_000 },
      { name: 'us-report', busyMs: 60_000, hosts: { labels: { zone: 'us' } } },
    ];
    const start = (instanceId: string, cluster: { labels?: Record<string, string>; worker?: boolean }) =>
      Replica.start({ redisUrl: SHARED_REDIS_URL, keyPrefix, instanceId, jobs, cluster: { sessionTtl: SESSION_TTL, ...cluster } }, log);

    // The API-only replica first: it sees each worker join.
    const api = await start('api', { labels: { role: 'api' }, worker: false });
    replicas.push(api);
    const [eu1, eu2, us1] = await Promise.all([
      start('eu-1', { labels: { zone: 'eu', role: 'worker' } }),
      start('eu-2', { labels: { zone: 'eu', role: 'worker' } }),
      start('us-1', { labels: { zone: 'us', role: 'worker' } }),
    ]);
    replicas.push(eu1, eu2, us1);
    await log.until('api to see the three workers join', () =>
      ['eu-1', 'eu-2', 'us-1'].every((id) => seenBy('api').some((event) => event.type === 'joined' && event.member.id === id)),
    );
    const euJoin = seenBy('api').find((event) => event.type === 'joined' && event.member.id === 'eu-1')!;
    expect(euJoin.member).toEqual({ id: 'eu-1', labels: { zone: 'eu', role: 'worker' }, worker: true, self: false });
    expect(linesOf('api').some((line) => line.message.startsWith('Member "us-1" joined the cluster (role=worker, zone=us; worker)'))).toBe(true);
    expect(linesOf('api').some((line) => line.message.startsWith('Joined the cluster as "api" (role=api; API only, runs no handler'))).toBe(true);

    // Labels: eu-tick only on the eu replicas; the API-only replica runs no handler at all.
    await log.until('6 runs of each ticking job', () => runsOf('eu-tick').length >= 6 && runsOf('any-tick').length >= 6);
    expect(runsOf('eu-tick').every((run) => run.instanceId === 'eu-1' || run.instanceId === 'eu-2')).toBe(true);
    // One run per due time, still.
    expect(new Set(runsOf('eu-tick').map((run) => run.scheduledAt)).size).toBe(runsOf('eu-tick').length);
    expect(log.events.some((event) => event.type === 'run' && event.instanceId === 'api')).toBe(false);

    // Triggered on the API-only replica, a job for the us zone runs on us-1; members() shows it there.
    await api.call('trigger', 'us-report');
    const report = await log.until('the us-report run', () => runsOf('us-report')[0]);
    expect(report.instanceId).toBe('us-1');
    const members = await untilMembers(api, (list) => list.find((m) => m.id === 'us-1')?.runs.some((run) => run.name === 'us-report'));
    expect(members.map((m) => [m.id, m.labels, m.worker, m.self])).toEqual([
      ['api', { role: 'api' }, false, true],
      ['eu-1', { zone: 'eu', role: 'worker' }, true, false],
      ['eu-2', { zone: 'eu', role: 'worker' }, true, false],
      ['us-1', { zone: 'us', role: 'worker' }, true, false],
    ]);
    expect(members.find((m) => m.id === 'us-1')!.runs).toContainEqual({ name: 'us-report', fencingToken: report.fencingToken });
    expect(members.find((m) => m.id === 'api')!.runs).toEqual([]);
    for (const member of members) {
      expect(member.sessionTtl).toBe(SESSION_TTL);
      expect(member.heartbeatAge).toBeGreaterThanOrEqual(0);
      expect(member.heartbeatAge).toBeLessThan(SESSION_TTL);
    }

    // A graceful stop: every replica hears it left at shutdown.
    await eu2.stop();
    const shutdown = await log.until('api to see eu-2 leave', () => seenBy('api').find((event) => event.type === 'left' && event.member.id === 'eu-2'));
    expect(shutdown).toMatchObject({ type: 'left', reason: 'shutdown' });
    expect(linesOf('api').map((line) => line.message)).toContain('Member "eu-2" left the cluster (left at shutdown).');

    // A crash: its session expires within the TTL (and a heartbeat).
    const killedAt = Date.now();
    await us1.kill();
    const expired = await log.until('eu-1 to see us-1 expire', () => seenBy('eu-1').find((event) => event.type === 'left' && event.member.id === 'us-1'), 15_000);
    expect(expired).toMatchObject({ type: 'left', reason: 'expired' });
    expect(Date.now() - killedAt).toBeLessThan(EXPIRY_BOUND_MS);
    await log.until('api to log the expiry', () =>
      linesOf('api').find((line) => line.level === 'warn' && line.message === 'Member "us-1" left the cluster (session TTL expired).'),
    );
    expect((await api.call<ClusterMember[]>('members')).map((m) => m.id)).toEqual(['api', 'eu-1']);

    // eu-tick goes on, on eu-1 alone now.
    const before = runsOf('eu-tick').length;
    await log.until('2 more runs of eu-tick', () => runsOf('eu-tick').length >= before + 2);
    expect(runsOf('eu-tick').slice(before).every((run) => run.instanceId === 'eu-1')).toBe(true);
  });
});

/** members() read again until `condition` holds: it changes at heartbeats, which no event announces to the test. */
async function untilMembers(replica: Replica, condition: (members: ClusterMember[]) => unknown, timeoutMs = 10_000): Promise<ClusterMember[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const members = await replica.call<ClusterMember[]>('members');
    if (condition(members)) return members;
    if (Date.now() > deadline) throw new Error(`members() never matched: ${JSON.stringify(members)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
