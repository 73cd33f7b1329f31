import { firstValueFrom, filter } from 'rxjs';
import type { Coordinator } from '../lib/coordination/coordinator.interface';
import { EmbeddedCoordinator } from '../lib/coordination/embedded/embedded.coordinator';
import { RedisCoordinator } from '../lib/coordination/redis/redis.coordinator';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';

/**
 * Membership, one contract on both coordinators: what a heartbeat keeps of a member (labels,
 * worker flag, runs, session TTL), who expires when, and why a member left.
 */
const factories = [
  { name: 'RedisCoordinator', create: (prefix: string): Coordinator => new RedisCoordinator(SHARED_REDIS_URL, prefix) },
  { name: 'EmbeddedCoordinator', create: (): Coordinator => new EmbeddedCoordinator() },
];

const TTL = 30_000;

describe.each(factories)('membership on $name', ({ create }) => {
  let coordinator: Coordinator;

  beforeEach(async () => {
    coordinator = create(uniquePrefix('members'));
    await coordinator.connect();
    await firstValueFrom(coordinator.available$.pipe(filter(Boolean)));
  });

  afterEach(() => coordinator.close());

  it('keeps what each member reports: labels, worker flag, session TTL, runs, and when it joined', async () => {
    const first = await coordinator.heartbeat('api', TTL, false, { labels: { role: 'api' }, worker: false, runs: [] });
    await coordinator.heartbeat('w1', 5_000, false, { labels: { zone: 'eu-1', role: 'worker' }, worker: true, runs: [{ name: 'report', fencingToken: 42 }] });
    const reply = await coordinator.heartbeat('api', TTL, false, { labels: { role: 'api' }, worker: false, runs: [] });

    expect(reply.members.sort()).toEqual(['api', 'w1']);
    const byId = new Map(reply.live.map((member) => [member.id, member]));
    expect(byId.get('w1')).toMatchObject({ labels: { zone: 'eu-1', role: 'worker' }, worker: true, sessionTtl: 5_000, runCount: 1 });
    // Renewing does not make a member join again.
    expect(byId.get('api')).toMatchObject({ labels: { role: 'api' }, worker: false, sessionTtl: TTL, runCount: 0, joinedAt: first.now });
    expect(byId.get('api')!.beatAt).toBe(reply.now);

    const { now, members } = await coordinator.readMembers();
    expect(now).toBeGreaterThanOrEqual(reply.now);
    expect(members.find((member) => member.id === 'w1')).toMatchObject({ runs: [{ name: 'report', fencingToken: 42 }], labels: { zone: 'eu-1', role: 'worker' } });
    expect(members.find((member) => member.id === 'api')).toMatchObject({ runs: [], worker: false });
  });

  it('records a member that leaves as departed at shutdown, and one whose own session lapsed as expired', async () => {
    const report = { labels: {}, worker: true, runs: [] };
    await coordinator.heartbeat('stays', TTL, false, report);
    await coordinator.heartbeat('short', 20, false, report);
    await coordinator.heartbeat('leaves', TTL, false, report);
    await coordinator.heartbeat('leaves', TTL, true, report);
    // `short`'s own 20 ms TTL expires it, whatever the TTL of the member whose heartbeat finds it.
    const before = Date.now();
    while (Date.now() < before + 30) await new Promise((resolve) => setTimeout(resolve, 5));
    const reply = await coordinator.heartbeat('stays', TTL, false, report);

    expect(reply.members).toEqual(['stays']);
    expect(reply.departed.map(({ id, reason }) => ({ id, reason })).sort((a, b) => a.id.localeCompare(b.id))).toEqual([
      { id: 'leaves', reason: 'shutdown' },
      { id: 'short', reason: 'expired' },
    ]);
    expect((await coordinator.readMembers()).members.map((member) => member.id)).toEqual(['stays']);
  });

  it('does not list a member whose session lapsed before any heartbeat removed it', async () => {
    await coordinator.heartbeat('gone', 20, false, { labels: {}, worker: true, runs: [] });
    expect((await coordinator.readMembers()).members.map((member) => member.id)).toEqual(['gone']);
    const before = Date.now();
    while (Date.now() < before + 30) await new Promise((resolve) => setTimeout(resolve, 5));
    expect((await coordinator.readMembers()).members).toEqual([]);
  });

  it('announces joins and leaves, and a member that joins again after it left as a new member', async () => {
    const announced = firstValueFrom(coordinator.events$.pipe(filter((event) => event.type === 'members')));
    const first = await coordinator.heartbeat('back', TTL);
    await announced;
    await coordinator.heartbeat('back', TTL, true);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const again = await coordinator.heartbeat('back', TTL);
    expect(again.live).toEqual([expect.objectContaining({ id: 'back', worker: true, labels: {}, joinedAt: again.now })]);
    expect(again.now).toBeGreaterThan(first.now);
    expect(again.departed).toEqual([expect.objectContaining({ id: 'back', reason: 'shutdown' })]);
  });
});
