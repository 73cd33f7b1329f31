import { filter, firstValueFrom } from 'rxjs';
import { Coordinator, JobRegistration, SlotOutcome } from '../lib/coordination/coordinator.interface';
import { EmbeddedCoordinator } from '../lib/coordination/embedded/embedded.coordinator';
import { RedisCoordinator } from '../lib/coordination/redis/redis.coordinator';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';

/**
 * The coordinator's part of continuous jobs, on both coordinators: slot leases, each with its
 * own fencing token, at most `max` live at once (refused, naming the holders, beyond), one per
 * instance, renewed and released as any run lease, free again once one expires; none while the
 * job is paused.
 */
const factories = [
  { name: 'RedisCoordinator', create: (prefix: string): Coordinator => new RedisCoordinator(SHARED_REDIS_URL, prefix) },
  { name: 'EmbeddedCoordinator', create: (): Coordinator => new EmbeddedCoordinator() },
];

const TTL = 30_000;
const SESSION_TTL = 60_000;
type Taken = Extract<SlotOutcome, { status: 'acquired' | 'held' }>;

function onDemand(name: string): JobRegistration {
  const definition = { spec: null, overlap: 'skip' as const, paused: false };
  return { name, definition, definitionHash: JSON.stringify(definition), first: null };
}

describe.each(factories)('slot leases on $name', ({ create }) => {
  let coordinator: Coordinator;

  beforeEach(async () => {
    coordinator = create(uniquePrefix('continuous-contract'));
    await coordinator.connect();
    await firstValueFrom(coordinator.available$.pipe(filter(Boolean)));
    await coordinator.register([onDemand('consumer')], 'boot', 'a');
    // Only members with a live session are given slots.
    for (const member of ['a', 'b', 'c', ...Array.from({ length: 12 }, (_, i) => `r${i}`)]) await coordinator.heartbeat(member, SESSION_TTL);
  });

  afterEach(() => coordinator.close());

  it('gives at most max live slot leases, each with its own increasing token, and names the holders when full', async () => {
    const a = (await coordinator.acquireSlot('consumer', 'a', TTL, 2)) as Taken;
    const b = (await coordinator.acquireSlot('consumer', 'b', TTL, 2)) as Taken;
    expect(a).toMatchObject({ status: 'acquired' });
    expect(b).toMatchObject({ status: 'acquired' });
    expect(b.fencingToken).toBeGreaterThan(a.fencingToken);
    expect(a.expiresAt - a.startedAt).toBe(TTL);

    const refused = await coordinator.acquireSlot('consumer', 'c', TTL, 2);
    expect(refused.status).toBe('full');
    const holders = (refused as Extract<SlotOutcome, { status: 'full' }>).holders;
    expect(holders.map((holder) => [holder.instanceId, holder.fencingToken]).sort()).toEqual([
      ['a', a.fencingToken],
      ['b', b.fencingToken],
    ]);
    const [record] = await coordinator.describe(['consumer']);
    expect(record.running.map((run) => [run.instanceId, run.fencingToken]).sort()).toEqual([
      ['a', a.fencingToken],
      ['b', b.fencingToken],
    ]);
  });

  it('answers an instance that holds a live slot lease with that lease, never a second one', async () => {
    const first = (await coordinator.acquireSlot('consumer', 'a', TTL, 3)) as Taken;
    const again = await coordinator.acquireSlot('consumer', 'a', TTL, 3);
    expect(again).toEqual({ status: 'held', fencingToken: first.fencingToken, startedAt: first.startedAt, expiresAt: first.expiresAt });
    const [record] = await coordinator.describe(['consumer']);
    expect(record.running).toHaveLength(1);
  });

  it('frees a slot when its lease is released or expires, and renews a slot lease as any lease', async () => {
    const a = (await coordinator.acquireSlot('consumer', 'a', TTL, 1)) as Taken;
    expect((await coordinator.acquireSlot('consumer', 'b', TTL, 1)).status).toBe('full');
    expect(await coordinator.extend([{ name: 'consumer', fencingToken: a.fencingToken }], TTL)).toEqual([true]);
    expect(await coordinator.finish([{ name: 'consumer', fencingToken: a.fencingToken, status: 'stopped', error: null }])).toEqual([true]);
    const b = (await coordinator.acquireSlot('consumer', 'b', 300, 1)) as Taken;
    expect(b).toMatchObject({ status: 'acquired' });
    expect(b.fencingToken).toBeGreaterThan(a.fencingToken);
    // A dead holder's slot frees once its lease expires (lockTtl after its last renewal).
    expect((await coordinator.acquireSlot('consumer', 'c', TTL, 1)).status).toBe('full');
    await new Promise((resolve) => setTimeout(resolve, b.expiresAt - b.startedAt + 20));
    const c = (await coordinator.acquireSlot('consumer', 'c', TTL, 1)) as Taken;
    expect(c).toMatchObject({ status: 'acquired' });
    expect(c.fencingToken).toBeGreaterThan(b.fencingToken);
    // The expired lease cannot be renewed: its run is aborted at its next extension.
    expect(await coordinator.extend([{ name: 'consumer', fencingToken: b.fencingToken }], TTL)).toEqual([false]);
  });

  it('gives no slot while the job is paused, and none for an unknown job', async () => {
    expect(await coordinator.pause('consumer')).toBe(true);
    expect(await coordinator.acquireSlot('consumer', 'a', TTL, 1)).toEqual({ status: 'paused' });
    expect(await coordinator.acquireSlot('nobody', 'a', TTL, 1)).toEqual({ status: 'unknown' });
  });

  it('takes a slot from a holder whose session lapsed before its lease expired, revoking its lease, and gives none to a caller without a session', async () => {
    await coordinator.heartbeat('short', 300);
    const held = (await coordinator.acquireSlot('consumer', 'short', TTL, 1)) as Taken;
    expect(held).toMatchObject({ status: 'acquired' });
    const revoked = firstValueFrom(coordinator.events$.pipe(filter((event) => event.type === 'cancel' && event.name === 'consumer' && event.fencingToken === held.fencingToken)));
    // Its session lives: the slot is its own, though the caller's session lives too.
    expect((await coordinator.acquireSlot('consumer', 'b', TTL, 1)).status).toBe('full');
    await new Promise((resolve) => setTimeout(resolve, 350));
    // Its lease has 29 s to run, its session none: the slot is b's, with a higher token.
    const taken = (await coordinator.acquireSlot('consumer', 'b', TTL, 1)) as Taken;
    expect(taken).toMatchObject({ status: 'acquired' });
    expect(taken.fencingToken).toBeGreaterThan(held.fencingToken);
    const [record] = await coordinator.describe(['consumer']);
    expect(record.running.map((run) => run.fencingToken)).toEqual([taken.fencingToken]);
    // Its replica is told to abort the revoked run.
    await expect(revoked).resolves.toMatchObject({ type: 'cancel', reason: 'replaced' });
    // The old holder, back, cannot renew what it held, and gets no slot before it heartbeats again.
    expect(await coordinator.extend([{ name: 'consumer', fencingToken: held.fencingToken }], TTL)).toEqual([false]);
    expect(await coordinator.acquireSlot('consumer', 'short', TTL, 2)).toEqual({ status: 'no-session' });
    expect(await coordinator.acquireSlot('consumer', 'never-seen', TTL, 2)).toEqual({ status: 'no-session' });
    await coordinator.heartbeat('short', 300);
    expect((await coordinator.acquireSlot('consumer', 'short', TTL, 2)).status).toBe('acquired');
  });

  it('leaves no dead run to recover behind a lease it revoked', async () => {
    await coordinator.heartbeat('short', 200);
    const held = (await coordinator.acquireSlot('consumer', 'short', 600, 1)) as Taken;
    // Renewed once: its expiry is known to the recovery now.
    expect(await coordinator.extend([{ name: 'consumer', fencingToken: held.fencingToken }], 600)).toEqual([true]);
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect((await coordinator.acquireSlot('consumer', 'b', TTL, 1)).status).toBe('acquired');
    // Past the revoked lease's expiry: nothing expired to recover (it ended when it was revoked).
    await new Promise((resolve) => setTimeout(resolve, 650));
    expect((await coordinator.expiredLeases(10)).expired).toEqual([]);
  });

  it('never gives more than max slot leases to concurrent requests', async () => {
    const outcomes = await Promise.all(Array.from({ length: 12 }, (_, i) => coordinator.acquireSlot('consumer', `r${i}`, TTL, 3)));
    expect(outcomes.filter((outcome) => outcome.status === 'acquired')).toHaveLength(3);
    expect(outcomes.filter((outcome) => outcome.status === 'full')).toHaveLength(9);
  });
});

