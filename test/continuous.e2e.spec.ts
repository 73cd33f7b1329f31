import type { JobDescription } from '../lib';
import type { ReplicaMessage } from './fixtures/replica.main';
import { EndEvent, Replica, RunEvent } from './support/replica';
import { RedisProxy } from './support/redis-proxy';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';
import { EventLog } from './support/wait';

type MembershipMessage = Extract<ReplicaMessage, { type: 'membership' }>;
type LogMessage = Extract<ReplicaMessage, { type: 'log' }>;

const SESSION_TTL = 1_500;
/** Far above the session TTL: a dead holder must be replaced by its session's end, not its lease's. */
const LOCK_TTL = 6_000;
/**
 * A dead holder's slot is taken over once the others see its session expire (its TTL, seen at
 * the next heartbeat: every third of the TTL; slot.lua then revokes its lease), plus one slot
 * request (250 ms); 1 s more for processes and IPC. Well under LOCK_TTL.
 */
const REPLACEMENT_BOUND_MS = SESSION_TTL + SESSION_TTL / 3 + 250 + 1_000;
/**
 * Continuous jobs across three replicas as real Node processes on one Redis: `max: 2` has
 * exactly two runs live; `kill -9` of a holder re-places its run on the third replica within the
 * bound; never three at once, judged from the handlers' own start and end events with their
 * fencing tokens (a killed replica's run ends when it is killed). A `max: 1` leader stays where
 * it is when a new replica joins (sticky). A leader cut off from Redis stops its run before
 * another replica is given its slot.
 */
describe('continuous jobs across replicas', () => {
  jest.setTimeout(120_000);
  const log = new EventLog<ReplicaMessage>();
  const replicas: Replica[] = [];
  const runsOf = (name: string) => log.events.filter((event): event is RunEvent => event.type === 'run' && event.name === name);
  const endOf = (token: number) => log.events.find((event): event is EndEvent => event.type === 'end' && event.fencingToken === token);
  const live = (name: string) => runsOf(name).filter((run) => !endOf(run.fencingToken) && !killed.has(run.instanceId));
  const killed = new Map<string, number>();

  afterAll(async () => {
    await Promise.all(replicas.splice(0).map((replica) => replica.kill()));
  });

  it('keeps exactly max runs live, re-places a killed holder within the bound, never more than max at once, and keeps a sticky leader', async () => {
    const keyPrefix = uniquePrefix('continuous-e2e');
    const jobs = [
      { name: 'pair', continuous: { max: 2 }, busyMs: 600_000 },
      { name: 'leader', continuous: { max: 1 }, busyMs: 600_000 },
    ];
    const start = (instanceId: string) =>
      Replica.start({ redisUrl: SHARED_REDIS_URL, keyPrefix, instanceId, jobs, lockTtl: LOCK_TTL, cluster: { sessionTtl: SESSION_TTL } }, log);

    // r1 first: the oldest member, so sticky makes it the leader and one of the pair.
    replicas.push(await start('r1'));
    replicas.push(...(await Promise.all([start('r2'), start('r3')])));
    await log.until('two pair runs and a leader run live', () => live('pair').length === 2 && live('leader').length === 1, 20_000);
    expect(live('leader')[0].instanceId).toBe('r1');
    const holders = live('pair').map((run) => run.instanceId).sort();
    expect(holders).toContain('r1');
    const [describedPair] = await Promise.all([replicas[0].call<JobDescription>('describe', 'pair')]);
    expect(describedPair.continuous!.holders.map((holder) => holder.fencingToken).sort()).toEqual(live('pair').map((run) => run.fencingToken).sort());

    // kill -9 the pair holder that is not the leader's replica: the third replica takes its slot.
    const victimId = holders.find((id) => id !== 'r1')!;
    const thirdId = ['r2', 'r3'].find((id) => id !== victimId)!;
    const victimRun = live('pair').find((run) => run.instanceId === victimId)!;
    const killedAt = Date.now();
    await replicas.find((replica) => replica.instanceId === victimId)!.kill();
    killed.set(victimId, killedAt);
    const replacement = await log.until('the pair run re-placed on the third replica', () => runsOf('pair').find((run) => run.instanceId === thirdId), 20_000);
    expect(replacement.at - killedAt).toBeLessThanOrEqual(REPLACEMENT_BOUND_MS);
    expect(replacement.fencingToken).toBeGreaterThan(victimRun.fencingToken);
    await log.until('two pair runs live again', () => live('pair').length === 2);

    // A new replica joins: the leader stays on r1 (sticky), and the pair where it is.
    const leaderRun = live('leader')[0];
    const pairTokens = live('pair').map((run) => run.fencingToken).sort();
    replicas.push(await start('r4'));
    const seenBy = (observer: string) => (events: ReplicaMessage[]) =>
      events.some((event) => event.type === 'membership' && event.instanceId === observer && (event as MembershipMessage).event.type === 'joined' && (event as MembershipMessage).event.member.id === 'r4');
    await log.until('r1 and the third replica to see r4 join', (events) => seenBy('r1')(events) && seenBy(thirdId)(events));
    await log.until("r4's own join", (events) => events.some((event) => event.type === 'log' && event.instanceId === 'r4' && (event as LogMessage).message.startsWith('Joined the cluster as "r4"')));
    // Held over one session TTL (several heartbeats of every replica): nothing moves.
    const until = Date.now() + SESSION_TTL;
    while (Date.now() < until) {
      const leader = await replicas[3].call<JobDescription>('describe', 'leader');
      expect(leader.continuous!.holders.map((holder) => [holder.instanceId, holder.fencingToken])).toEqual([['r1', leaderRun.fencingToken]]);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(endOf(leaderRun.fencingToken)).toBeUndefined();
    expect(live('pair').map((run) => run.fencingToken).sort()).toEqual(pairTokens);
    expect(runsOf('leader').some((run) => run.instanceId === 'r4') || runsOf('pair').some((run) => run.instanceId === 'r4')).toBe(false);

    // The checker, on the handlers' own history: never more than max runs at once, each with its own token.
    for (const [name, max] of [['pair', 2], ['leader', 1]] as const) {
      const runs = runsOf(name);
      expect(new Set(runs.map((run) => run.fencingToken)).size).toBe(runs.length);
      const edges = runs.flatMap((run) => {
        const end = endOf(run.fencingToken)?.at ?? killed.get(run.instanceId) ?? Infinity;
        return [
          { at: run.at, delta: 1 },
          { at: end, delta: -1 },
        ];
      });
      // Ends before starts at the same instant: a run that ended as another began does not overlap it.
      edges.sort((a, b) => a.at - b.at || a.delta - b.delta);
      let concurrent = 0;
      let most = 0;
      for (const edge of edges) most = Math.max(most, (concurrent += edge.delta));
      expect(most).toBe(max);
    }
  });

  it('stops the run of a leader cut off from Redis before another replica takes its slot, within the session TTL', async () => {
    const keyPrefix = uniquePrefix('continuous-cutoff');
    const jobs = [{ name: 'cut-leader', continuous: { max: 1 }, busyMs: 600_000 }];
    const proxy = await RedisProxy.start(Number(new URL(SHARED_REDIS_URL).port || 6379));
    try {
      const start = (instanceId: string, redisUrl: string) => Replica.start({ redisUrl, keyPrefix, instanceId, jobs, lockTtl: LOCK_TTL, cluster: { sessionTtl: SESSION_TTL } }, log);
      // c1 first, through the proxy: the oldest member, so sticky makes it the leader.
      replicas.push(await start('c1', proxy.url));
      replicas.push(await start('c2', SHARED_REDIS_URL));
      const first = await log.until('c1 leading', () => runsOf('cut-leader').find((run) => run.instanceId === 'c1'), 20_000);

      const cutAt = Date.now();
      proxy.blackhole();
      const next = await log.until('another leader', () => runsOf('cut-leader').find((run) => run.instanceId === 'c2'), 20_000);
      // c1 saw its session lapse on its own clock and aborted its run, before c2 started (its
      // message may come after c2's: each replica has its own channel to this process).
      const ended = await log.until("c1's run to end", () => endOf(first.fencingToken));
      expect(ended).toMatchObject({ aborted: 'lease-lost' });
      expect(ended.at).toBeLessThanOrEqual(next.at);
      expect(next.fencingToken).toBeGreaterThan(first.fencingToken);
      expect(next.at - cutAt).toBeLessThanOrEqual(REPLACEMENT_BOUND_MS);
    } finally {
      await proxy.close();
    }
  });
});
