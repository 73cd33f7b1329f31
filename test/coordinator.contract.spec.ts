import { firstValueFrom, filter, take, toArray } from 'rxjs';
import { ClaimResult, CoordinationEvent, Coordinator, JobRegistration, MAX_PENDING_TRIGGERS } from '../lib/coordination/coordinator.interface';
import { EmbeddedCoordinator } from '../lib/coordination/embedded/embedded.coordinator';
import { RedisCoordinator } from '../lib/coordination/redis/redis.coordinator';
import type { OverlapPolicy } from '../lib/scheduling/distributed-job-options.interface';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';
import { leaseTask } from './support/task-lease';

/**
 * One contract, two coordinators: whatever holds on Redis across replicas holds the same in
 * one process, so the sample behaves as production does.
 */
type Factory = { name: string; create: (prefix: string) => Coordinator; shared: boolean };

const factories: Factory[] = [
  { name: 'RedisCoordinator', create: (prefix) => new RedisCoordinator(SHARED_REDIS_URL, prefix), shared: true },
  { name: 'EmbeddedCoordinator', create: () => new EmbeddedCoordinator(), shared: false },
];

const INSTANCE = 'replica-a';
const TTL = 30_000;

function registration(name: string, options: { every?: number; overlap?: OverlapPolicy; paused?: boolean; due?: number } = {}): JobRegistration {
  const every = options.every ?? 1_000;
  const definition = { spec: { every, jitter: 0 }, overlap: options.overlap ?? 'skip', paused: options.paused ?? false };
  const due = options.due ?? Date.now() - 5;
  return { name, definition, definitionHash: JSON.stringify(definition), first: definition.paused ? null : { base: due, due } };
}

describe.each(factories)('$name', ({ create, shared }) => {
  let coordinator: Coordinator;
  let prefix: string;
  const others: Coordinator[] = [];

  /** Another replica on the same coordinator (for the embedded one, the same instance). */
  async function replica(): Promise<Coordinator> {
    if (!shared) return coordinator;
    const other = create(prefix);
    others.push(other);
    await connected(other);
    return other;
  }

  async function connected(target: Coordinator): Promise<void> {
    await target.connect();
    await firstValueFrom(target.available$.pipe(filter(Boolean)));
  }

  beforeEach(async () => {
    prefix = uniquePrefix('contract');
    coordinator = create(prefix);
    await connected(coordinator);
  });

  afterEach(async () => {
    await Promise.all([coordinator, ...others.splice(0)].map((c) => c.close()));
  });

  async function state(name: string) {
    const { states } = await coordinator.snapshot([name], INSTANCE);
    return states[0];
  }

  it('creates a job once when replicas register it at the same moment', async () => {
    const replicas = await Promise.all(Array.from({ length: 6 }, () => replica()));
    const jobs = Array.from({ length: 50 }, (_, i) => registration(`job-${i}`, { due: Date.now() + 60_000 + i }));
    const outcomes = await Promise.all(replicas.map((r, i) => r.register(jobs, 'boot', `replica-${i}`)));
    for (let job = 0; job < jobs.length; job++) {
      const created = outcomes.filter((perReplica) => perReplica[job].outcome === 'created');
      expect(created).toHaveLength(1);
    }
    const records = await coordinator.describe();
    expect(records.map((r) => r.name).sort()).toEqual(jobs.map((j) => j.name).sort());
    const snapshot = await coordinator.snapshot(jobs.map((j) => j.name), INSTANCE);
    expect(snapshot.states.map((s) => s.due)).toEqual(jobs.map((j) => j.first!.due));
  });

  it('lets exactly one of many concurrent claims of a due time win, and hands the others the next one', async () => {
    await coordinator.register([registration('tick')], 'boot', INSTANCE);
    const { rev, due } = await state('tick');
    const replicas = await Promise.all(Array.from({ length: 5 }, () => replica()));
    const results = await Promise.all(
      replicas.map((r, i) => r.claim([{ name: 'tick', rev, due: due!, next: { base: due! + 1000 + i, due: due! + 1000 + i } }], `r${i}`, TTL)),
    );
    const flat = results.flat();
    const claimed = flat.filter((r) => r.status === 'claimed');
    expect(claimed).toHaveLength(1);
    const winner = flat.indexOf(claimed[0]);
    const moved = flat.filter((r): r is Extract<ClaimResult, { status: 'moved' }> => r.status === 'moved');
    expect(moved).toHaveLength(4);
    for (const result of moved) expect(result.due).toBe(due! + 1000 + winner);
    expect((await state('tick')).due).toBe(due! + 1000 + winner);
  });

  it('refuses a fire that is not due yet by its clock, and a next fire computed from an old revision', async () => {
    const future = Date.now() + 60_000;
    await coordinator.register([registration('later', { due: future })], 'boot', INSTANCE);
    const [early] = await coordinator.claim([{ name: 'later', rev: 1, due: future, next: { base: future + 1000, due: future + 1000 } }], INSTANCE, TTL);
    expect(early.status).toBe('early');
    expect((early as { waitMs: number }).waitMs).toBeGreaterThan(55_000);

    await coordinator.register([registration('old')], 'boot', INSTANCE);
    const { due } = await state('old');
    const [stale] = await coordinator.claim([{ name: 'old', rev: 0, due: due!, next: null }], INSTANCE, TTL);
    expect(stale.status).toBe('stale');
    expect((await state('old')).due).toBe(due);
  });

  it('never sets a due time at or before the one it served: a replica whose clock is behind cannot run a fire twice', async () => {
    await coordinator.register([registration('served')], 'boot', INSTANCE);
    const { due, rev } = await state('served');
    // A next due time at or before the fire being claimed: refused, nothing consumed.
    const [refused] = await coordinator.claim([{ name: 'served', rev, due: due!, next: { base: due!, due: due! } }], INSTANCE, TTL);
    expect(refused.status).toBe('stale');
    expect((await state('served')).due).toBe(due);
    const [claimed] = await coordinator.claim([{ name: 'served', rev, due: due!, next: { base: due! + 60_000, due: due! + 60_000 } }], INSTANCE, TTL);
    expect(claimed.status).toBe('claimed');
    const [record] = await coordinator.describe(['served']);
    expect(record.served).toBe(due);
    // reset() from a process whose clock is behind would set the served fire again: refused.
    expect(await coordinator.reschedule('served', { rev, next: { base: due!, due: due! } })).toBe('stale');
    expect(await coordinator.reschedule('served', { rev, next: { base: due! - 1_000, due: due! - 1_000 } })).toBe('stale');
    expect((await state('served')).due).toBe(due! + 60_000);
    expect(await coordinator.reschedule('served', { rev, next: { base: due! + 1, due: due! + 1 } })).toBe('ok');
    // A replaced definition whose first fire is not after the served one keeps the due time set.
    const changed = registration('served', { every: 2_000, due: due! });
    expect((await coordinator.register([changed], 'boot', 'replica-behind'))[0].outcome).toBe('replaced');
    expect((await state('served')).due).toBe(due! + 1);
  });

  it('gives every run a fencing token above the previous one', async () => {
    await coordinator.register([registration('fenced', { overlap: 'allow' })], 'boot', INSTANCE);
    const tokens: number[] = [];
    for (let i = 0; i < 5; i++) {
      const { due, rev } = await state('fenced');
      const [result] = await coordinator.claim([{ name: 'fenced', rev, due: due!, next: { base: due! + 1, due: due! + 1 } }], INSTANCE, TTL);
      expect(result.status).toBe('claimed');
      tokens.push((result as { fencingToken: number }).fencingToken);
    }
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]);
    expect(tokens[0]).toBeGreaterThanOrEqual(Date.now() - 60_000);
  });

  describe('overlap', () => {
    async function claimDue(name: string, on: Coordinator = coordinator, instance = INSTANCE): Promise<ClaimResult> {
      const { due, rev } = await state(name);
      // Due at once, yet after the fire served (a next due time at or before it is refused).
      const next = due! + 1;
      const [result] = await on.claim([{ name, rev, due: due!, next: { base: next, due: next } }], instance, TTL);
      return result;
    }

    it("'skip' consumes a fire due while a run holds the lock, and runs the next once it is released", async () => {
      await coordinator.register([registration('skip')], 'boot', INSTANCE);
      const first = (await claimDue('skip')) as Extract<ClaimResult, { status: 'claimed' }>;
      expect(first.status).toBe('claimed');
      expect(await claimDue('skip', await replica(), 'replica-b')).toMatchObject({ status: 'skipped', reason: 'running', holder: INSTANCE });
      expect(await coordinator.finish([{ name: 'skip', fencingToken: first.fencingToken, status: 'success', error: null }])).toEqual([true]);
      expect((await claimDue('skip')).status).toBe('claimed');
    });

    it("'queue-one' runs one more time when the current run ends", async () => {
      await coordinator.register([registration('queue', { overlap: 'queue-one' })], 'boot', INSTANCE);
      const first = (await claimDue('queue')) as Extract<ClaimResult, { status: 'claimed' }>;
      expect((await claimDue('queue')).status).toBe('queued');
      expect((await claimDue('queue')).status).toBe('queued');
      const triggered = firstValueFrom(coordinator.events$.pipe(filter((e) => e.type === 'trigger')));
      await coordinator.finish([{ name: 'queue', fencingToken: first.fencingToken, status: 'success', error: null }]);
      const event = (await triggered) as Extract<CoordinationEvent, { type: 'trigger' }>;
      expect(event).toMatchObject({ name: 'queue', trigger: 'SCHEDULE' });
      const { triggers } = await coordinator.snapshot(['queue'], INSTANCE);
      expect(triggers.filter((t) => t.name === 'queue')).toHaveLength(1);
      const [second] = await coordinator.claim([{ name: 'queue', rev: 1, member: event.member, next: null }], INSTANCE, TTL);
      expect(second.status).toBe('claimed');
    });

    it("'queue-one' drops the queued run of a holder that died instead of running it later", async () => {
      await coordinator.register([registration('queue-dead', { overlap: 'queue-one' })], 'boot', INSTANCE);
      const { due, rev } = await state('queue-dead');
      const [first] = await coordinator.claim([{ name: 'queue-dead', rev, due: due!, next: { base: due! + 1, due: due! + 1 } }], 'dead', 1_000);
      expect(first.status).toBe('claimed');
      expect((await claimDue('queue-dead')).status).toBe('queued');
      await clockPast((first as Extract<ClaimResult, { status: 'claimed' }>).startedAt + 1_000); // the dead holder's lease runs out
      expect((await claimDue('queue-dead')).status).toBe('claimed');
      expect((await coordinator.describe(['queue-dead']))[0].queued).toBe(false);
    });

    it("'cancel-previous' revokes the running lease, tells its holder, and starts the new run", async () => {
      await coordinator.register([registration('cancel', { overlap: 'cancel-previous' })], 'boot', INSTANCE);
      const first = (await claimDue('cancel')) as Extract<ClaimResult, { status: 'claimed' }>;
      const cancelled = firstValueFrom(coordinator.events$.pipe(filter((e) => e.type === 'cancel')));
      const second = await claimDue('cancel', await replica(), 'replica-b');
      expect(second.status).toBe('claimed');
      expect(await cancelled).toEqual({ type: 'cancel', name: 'cancel', fencingToken: first.fencingToken, reason: 'replaced' });
      expect(await coordinator.extend([{ name: 'cancel', fencingToken: first.fencingToken }], TTL)).toEqual([false]);
      expect(await coordinator.finish([{ name: 'cancel', fencingToken: first.fencingToken, status: 'stopped', error: null }])).toEqual([false]);
    });

    it('stops a run from any replica: revokes its lease, tells its holder, records it stopped and starts the run queued behind it', async () => {
      await coordinator.register([registration('stoppable', { overlap: 'queue-one' })], 'boot', INSTANCE);
      const first = (await claimDue('stoppable')) as Extract<ClaimResult, { status: 'claimed' }>;
      expect((await claimDue('stoppable')).status).toBe('queued');
      const events = firstValueFrom(coordinator.events$.pipe(filter((e) => e.type === 'cancel' || e.type === 'trigger'), take(2), toArray()));
      expect(await (await replica()).stop('stoppable', first.fencingToken)).toBe(true);
      expect(await events).toEqual([
        { type: 'cancel', name: 'stoppable', fencingToken: first.fencingToken, reason: 'stopped' },
        expect.objectContaining({ type: 'trigger', name: 'stoppable', trigger: 'SCHEDULE' }),
      ]);
      expect(await coordinator.extend([{ name: 'stoppable', fencingToken: first.fencingToken }], TTL)).toEqual([false]);
      const [record] = await coordinator.describe(['stoppable']);
      expect(record.lastRun).toMatchObject({ fencingToken: first.fencingToken, status: 'stopped' });
      expect(await coordinator.stop('stoppable', first.fencingToken)).toBe(false);
    });

    it('does not report a run as stopped whose lease had expired: its replica is gone', async () => {
      await coordinator.register([registration('orphan')], 'boot', INSTANCE);
      const lease = await leaseTask(coordinator, 'orphan', 'dead', 1_000, 7);
      expect(lease).toMatchObject({ fencingToken: expect.any(Number), startedAt: expect.any(Number), taskId: 7 });
      const { ownLeases } = await coordinator.snapshot(['orphan'], 'dead');
      expect(ownLeases).toEqual([expect.objectContaining({ name: 'orphan', fencingToken: lease.fencingToken, taskId: 7, trigger: 'EVENT' })]);
      await clockPast(lease.startedAt + 1_000); // the dead replica's lease runs out
      expect(await coordinator.stop('orphan', lease.fencingToken)).toBe(false);
      // No task of a job the coordinator does not know is dispatched, so none is leased.
      expect(await coordinator.dispatchTasks([{ name: 'unknown', taskId: 8 }])).toEqual([false]);
    });

    it("'allow' runs fires side by side", async () => {
      await coordinator.register([registration('allow', { overlap: 'allow' })], 'boot', INSTANCE);
      expect((await claimDue('allow')).status).toBe('claimed');
      expect((await claimDue('allow')).status).toBe('claimed');
      const [record] = await coordinator.describe(['allow']);
      expect(record.running).toHaveLength(2);
    });

    it('lets another replica run the job once a dead holder’s lease has expired', async () => {
      await coordinator.register([registration('lease')], 'boot', INSTANCE);
      const { due, rev } = await state('lease');
      const [first] = await coordinator.claim([{ name: 'lease', rev, due: due!, next: { base: due! + 1, due: due! + 1 } }], 'dead', 1_000);
      expect(first.status).toBe('claimed');
      expect((await claimDue('lease')).status).toBe('skipped');
      await clockPast((first as Extract<ClaimResult, { status: 'claimed' }>).startedAt + 1_000); // the lease's own lifetime
      expect((await claimDue('lease')).status).toBe('claimed');
    });
  });

  it('queues triggers, coalesces the same request, and lets one replica take each', async () => {
    await coordinator.register([registration('manual', { paused: true })], 'boot', INSTANCE);
    const first = await coordinator.requestTrigger('manual', 'EVENT', 'start');
    expect(first).toEqual({ status: 'accepted', requestedAt: expect.any(Number) });
    expect(await coordinator.requestTrigger('manual', 'EVENT', 'start')).toEqual(first);
    expect(await coordinator.requestTrigger('manual', 'MANUAL', 'a')).toMatchObject({ status: 'accepted' });
    expect(await coordinator.requestTrigger('nobody', 'MANUAL', 'a')).toEqual({ status: 'unknown' });
    const { triggers } = await coordinator.snapshot(['manual'], INSTANCE);
    expect(triggers.map((t) => t.trigger).sort()).toEqual(['EVENT', 'MANUAL']);
    expect(triggers.map((t) => t.id).sort()).toEqual(['a', 'start']);
    const member = triggers.find((t) => t.trigger === 'MANUAL')!.member;
    const other = await replica();
    const results = await Promise.all([coordinator, other].map((c, i) => c.claim([{ name: 'manual', rev: 1, member, next: null }], `replica-${i}`, TTL)));
    expect(results.flat().map((r) => r.status).sort()).toEqual(['claimed', 'gone']);
    expect(results.flat().find((r) => r.status === 'claimed')).toMatchObject({ trigger: 'MANUAL' });
  });

  it('runs a trigger sent twice with one id once, even when the first was already taken', async () => {
    await coordinator.register([registration('once', { paused: true })], 'boot', INSTANCE);
    const receipt = await coordinator.requestTrigger('once', 'MANUAL', 'request-1', 60_000);
    expect(receipt).toEqual({ status: 'accepted', requestedAt: expect.any(Number) });
    const [pending] = (await coordinator.snapshot(['once'], INSTANCE)).triggers;
    const [claimed] = await coordinator.claim([{ name: 'once', rev: 1, member: pending.member, next: null }], INSTANCE, TTL);
    expect(claimed.status).toBe('claimed');
    // The same request again, as a client resending it after a reconnection would: the same
    // answer, although the job runs now (a new request would be skipped), and no second run.
    expect(await coordinator.requestTrigger('once', 'MANUAL', 'request-1', 60_000)).toEqual(receipt);
    expect((await coordinator.snapshot(['once'], INSTANCE)).triggers).toEqual([]);
    expect(await coordinator.requestTrigger('once', 'MANUAL', 'request-2', 60_000)).toMatchObject({ status: 'skipped', reason: 'running' });
  });

  describe('trigger requests', () => {
    it('answers skipped at once, queueing nothing, for a job locked by hand or running under overlap skip', async () => {
      await coordinator.register([registration('guarded', { paused: true }), registration('parallel', { paused: true, overlap: 'allow' })], 'boot', INSTANCE);
      expect(await coordinator.lock('guarded', 'ops', null)).toEqual({ status: 'locked' });
      expect(await coordinator.requestTrigger('guarded', 'MANUAL', 'while-locked', 60_000)).toEqual({
        status: 'skipped',
        reason: 'locked',
        holder: 'ops',
        requestedAt: expect.any(Number),
      });
      await coordinator.unlock('guarded', 'ops');
      expect(await coordinator.requestTrigger('guarded', 'MANUAL', 'free', 60_000)).toMatchObject({ status: 'accepted' });
      const [pending] = (await coordinator.snapshot(['guarded'], INSTANCE)).triggers;
      expect(pending.id).toBe('free');
      const [run] = await coordinator.claim([{ name: 'guarded', rev: 1, member: pending.member, next: null }], 'replica-b', TTL);
      expect(run.status).toBe('claimed');
      expect(await coordinator.requestTrigger('guarded', 'MANUAL', 'while-running', 60_000)).toEqual({
        status: 'skipped',
        reason: 'running',
        holder: 'replica-b',
        requestedAt: expect.any(Number),
      });
      expect((await coordinator.snapshot(['guarded'], INSTANCE)).triggers).toEqual([]);
      // Other overlap policies decide when the trigger is claimed: it is accepted. (A run of the
      // job: a task's lease would not count, tasks are outside the overlap policy.)
      await coordinator.requestTrigger('parallel', 'MANUAL', 'first');
      const [first] = (await coordinator.snapshot(['parallel'], INSTANCE)).triggers;
      const [beside] = await coordinator.claim([{ name: 'parallel', rev: 1, member: first.member, next: null }], 'replica-b', TTL);
      expect(beside.status).toBe('claimed');
      expect(await coordinator.requestTrigger('parallel', 'MANUAL', 'beside', 60_000)).toMatchObject({ status: 'accepted' });
    });

    it(`refuses a job's trigger beyond ${MAX_PENDING_TRIGGERS} pending, and only that job's`, async () => {
      await coordinator.register([registration('flooded', { paused: true }), registration('calm', { paused: true })], 'boot', INSTANCE);
      for (let i = 0; i < MAX_PENDING_TRIGGERS; i++) {
        expect((await coordinator.requestTrigger('flooded', 'MANUAL', `r${i}`, 60_000)).status).toBe('accepted');
      }
      expect(await coordinator.requestTrigger('flooded', 'MANUAL', 'one-too-many', 60_000)).toEqual({ status: 'full', pending: MAX_PENDING_TRIGGERS });
      // The cap is per job: another job takes triggers.
      expect(await coordinator.requestTrigger('calm', 'MANUAL', 'fine', 60_000)).toMatchObject({ status: 'accepted' });
      const { triggers } = await coordinator.snapshot(['flooded'], INSTANCE);
      expect(triggers).toHaveLength(MAX_PENDING_TRIGGERS);
      // A refused request is not remembered: sent again once one trigger has run, it is accepted.
      const [run] = (await coordinator.claim([{ name: 'flooded', rev: 1, member: triggers[0].member, next: null }], INSTANCE, TTL)) as Extract<
        ClaimResult,
        { status: 'claimed' }
      >[];
      await coordinator.finish([{ name: 'flooded', fencingToken: run.fencingToken, status: 'success', error: null }]);
      expect(await coordinator.requestTrigger('flooded', 'MANUAL', 'one-too-many', 60_000)).toMatchObject({ status: 'accepted' });
      expect((await coordinator.describe(['flooded']))[0].pendingTriggers).toBe(MAX_PENDING_TRIGGERS);
    });

    it('reads only the triggers of the jobs asked about, in snapshots and descriptions', async () => {
      await coordinator.register([registration('asked', { paused: true }), registration('busy', { paused: true })], 'boot', INSTANCE);
      await coordinator.requestTrigger('asked', 'MANUAL', 'mine', 60_000);
      for (let i = 0; i < 5; i++) await coordinator.requestTrigger('busy', 'MANUAL', `other-${i}`, 60_000);
      const { triggers } = await coordinator.snapshot(['asked'], INSTANCE);
      expect(triggers).toEqual([{ name: 'asked', member: expect.any(String), id: 'mine', trigger: 'MANUAL', requestedAt: expect.any(Number) }]);
      expect((await coordinator.describe(['asked']))[0].pendingTriggers).toBe(1);
      expect((await coordinator.describe()).map((r) => [r.name, r.pendingTriggers])).toEqual([
        ['asked', 1],
        ['busy', 5],
      ]);
    });
  });

  describe('checkpoints', () => {
    type Claimed = Extract<ClaimResult, { status: 'claimed' }>;

    async function claimRun(name: string, on: Coordinator = coordinator, instance = INSTANCE): Promise<Claimed> {
      const { due, rev } = await state(name);
      const [result] = await on.claim([{ name, rev, due: due!, next: { base: due! + 1, due: due! + 1 } }], instance, TTL);
      expect(result.status).toBe('claimed');
      return result as Claimed;
    }

    it('reads back what was saved, with its token and time, and hands it to the next claim of the job', async () => {
      await coordinator.register([registration('progress', { overlap: 'allow' })], 'boot', INSTANCE);
      expect(await coordinator.readCheckpoint('progress')).toBeNull();
      const first = await claimRun('progress');
      expect(first.checkpoint).toBeNull();
      expect(await coordinator.saveCheckpoint('progress', first.fencingToken, '{"page":1}', 1_000)).toEqual({ status: 'saved' });
      // The same run again: the latest state wins.
      expect(await coordinator.saveCheckpoint('progress', first.fencingToken, '{"page":2}', 2_000)).toEqual({ status: 'saved' });
      const saved = { state: '{"page":2}', savedAt: 2_000, fencingToken: first.fencingToken };
      expect(await coordinator.readCheckpoint('progress')).toEqual(saved);
      await coordinator.finish([{ name: 'progress', fencingToken: first.fencingToken, status: 'success', error: null }]);
      const second = await claimRun('progress', await replica(), 'replica-b');
      expect(second.checkpoint).toEqual(saved);
      expect(await coordinator.readCheckpoint('unknown-job')).toBe('unknown');
    });

    it('refuses a write with an older token than the stored one: a replaced run cannot overwrite its successor', async () => {
      await coordinator.register([registration('zombie', { overlap: 'allow' })], 'boot', INSTANCE);
      const old = await claimRun('zombie');
      const successor = await claimRun('zombie', await replica(), 'replica-b');
      expect(await coordinator.saveCheckpoint('zombie', successor.fencingToken, '"new"', 2_000)).toEqual({ status: 'saved' });
      expect(await coordinator.saveCheckpoint('zombie', old.fencingToken, '"old"', 3_000)).toEqual({ status: 'stale', floor: successor.fencingToken });
      expect(await coordinator.readCheckpoint('zombie')).toEqual({ state: '"new"', savedAt: 2_000, fencingToken: successor.fencingToken });
    });

    it('fences the earlier runs at the claim of a job that has a checkpoint, before the new run writes', async () => {
      await coordinator.register([registration('taken-over', { overlap: 'allow' })], 'boot', INSTANCE);
      const old = await claimRun('taken-over');
      expect(await coordinator.saveCheckpoint('taken-over', old.fencingToken, '1', 1_000)).toEqual({ status: 'saved' });
      const successor = await claimRun('taken-over', await replica(), 'replica-b');
      expect(successor.checkpoint).toEqual({ state: '1', savedAt: 1_000, fencingToken: old.fencingToken });
      expect(await coordinator.saveCheckpoint('taken-over', old.fencingToken, '2', 2_000)).toEqual({ status: 'stale', floor: successor.fencingToken });
      expect((await coordinator.readCheckpoint('taken-over')) as { state: string }).toMatchObject({ state: '1' });
    });

    it('clears a checkpoint but keeps its fence at the latest token: an older run cannot bring it back', async () => {
      await coordinator.register([registration('cleared', { overlap: 'allow' })], 'boot', INSTANCE);
      const old = await claimRun('cleared');
      expect(await coordinator.saveCheckpoint('cleared', old.fencingToken, '"old"', 1_000)).toEqual({ status: 'saved' });
      const latest = await claimRun('cleared');
      expect(await coordinator.clearCheckpoint('cleared')).toBe(true);
      expect(await coordinator.readCheckpoint('cleared')).toBeNull();
      expect(await coordinator.saveCheckpoint('cleared', old.fencingToken, '"again"', 2_000)).toEqual({ status: 'stale', floor: latest.fencingToken });
      expect(await coordinator.readCheckpoint('cleared')).toBeNull();
      // The latest run (and any later one) may write it again.
      expect(await coordinator.saveCheckpoint('cleared', latest.fencingToken, '"latest"', 3_000)).toEqual({ status: 'saved' });
      expect((await claimRun('cleared')).checkpoint).toEqual({ state: '"latest"', savedAt: 3_000, fencingToken: latest.fencingToken });
      expect(await coordinator.clearCheckpoint('unknown-job')).toBe(false);
    });

    it("refuses a replaced run's first checkpoint (none existed when the newer run was issued), and one for a job Redis no longer has", async () => {
      await coordinator.register([registration('first-ckpt', { overlap: 'allow' })], 'boot', INSTANCE);
      const zombie = await claimRun('first-ckpt');
      const successor = await claimRun('first-ckpt');
      expect(await coordinator.saveCheckpoint('first-ckpt', zombie.fencingToken, '"zombie"', 1_000)).toEqual({ status: 'stale', floor: successor.fencingToken });
      expect(await coordinator.readCheckpoint('first-ckpt')).toBeNull();
      expect(await coordinator.saveCheckpoint('first-ckpt', successor.fencingToken, '"successor"', 2_000)).toEqual({ status: 'saved' });
      expect(await coordinator.saveCheckpoint('no-such-job', successor.fencingToken, '"lost"', 3_000)).toEqual({ status: 'stale', floor: 0 });
      expect(await coordinator.readCheckpoint('no-such-job')).toBe('unknown');
    });

    it('answers a claim sent again with the checkpoint, and reads none for a job that never checkpointed', async () => {
      await coordinator.register([registration('resent'), registration('never')], 'boot', INSTANCE);
      const { rev, due } = await state('resent');
      const request = { name: 'resent', rev, due: due!, next: { base: due! + 60_000, due: due! + 60_000 } };
      const [first] = await coordinator.claim([request], INSTANCE, TTL);
      const token = (first as Claimed).fencingToken;
      await coordinator.saveCheckpoint('resent', token, '[1,2]', 5_000);
      expect(await coordinator.claim([request], INSTANCE, TTL)).toEqual([{ ...first, checkpoint: { state: '[1,2]', savedAt: 5_000, fencingToken: token } }]);
      expect((await claimRun('never')).checkpoint).toBeNull();
      if (coordinator instanceof RedisCoordinator) {
        // No key is made for a job that never checkpointed.
        expect(await coordinator.client.exists(`{${prefix}}:checkpoint:never`)).toBe(0);
      }
    });

    it('answers corrupt for a claim of a job whose checkpoint key holds what no script wrote, and writes nothing for it', async () => {
      if (!(coordinator instanceof RedisCoordinator)) return;
      await coordinator.register([registration('bad-checkpoint')], 'boot', INSTANCE);
      const key = `{${prefix}}:checkpoint:bad-checkpoint`;
      await coordinator.client.set(key, 'not a hash');
      const { due, rev } = await state('bad-checkpoint');
      const [result] = await coordinator.claim([{ name: 'bad-checkpoint', rev, due: due!, next: { base: due! + 1, due: due! + 1 } }], INSTANCE, TTL);
      expect(result).toEqual({ status: 'corrupt', key, problem: 'expected a hash, found a string' });
      expect((await state('bad-checkpoint')).due).toBe(due);
      await expect(coordinator.saveCheckpoint('bad-checkpoint', 1, '1', 1)).rejects.toThrow(/checkpoint:bad-checkpoint/);
    });
  });

  it('tells a replica of its own live leases, so a run whose claim reply was lost is not lost', async () => {
    await coordinator.register([registration('orphan')], 'boot', INSTANCE);
    const { due, rev } = await state('orphan');
    const [result] = await coordinator.claim([{ name: 'orphan', rev, due: due!, next: { base: due! + 60_000, due: due! + 60_000 } }], INSTANCE, TTL);
    const { fencingToken } = result as Extract<ClaimResult, { status: 'claimed' }>;
    const { ownLeases } = await coordinator.snapshot(['orphan'], INSTANCE);
    expect(ownLeases).toEqual([
      expect.objectContaining({ name: 'orphan', fencingToken, scheduledAt: due, startedAt: expect.any(Number), trigger: 'SCHEDULE' }),
    ]);
    // Its real expiry, so that the replica adopting it gives it up before then.
    expect(ownLeases[0].expiresAt - ownLeases[0].startedAt).toBe(TTL);
    expect((await coordinator.snapshot(['orphan'], 'another-replica')).ownLeases).toEqual([]);
  });

  describe('requests sent again (a reply lost, the client resending after a reconnection)', () => {
    it('answers a claim the replica already won with the same lease, for a due fire and for a trigger', async () => {
      await coordinator.register([registration('won'), registration('won-trigger', { paused: true })], 'boot', INSTANCE);
      const { rev, due } = await state('won');
      const request = { name: 'won', rev, due: due!, next: { base: due! + 60_000, due: due! + 60_000 } };
      const [first] = await coordinator.claim([request], INSTANCE, TTL);
      expect(first.status).toBe('claimed');
      expect(await coordinator.claim([request], INSTANCE, TTL)).toEqual([first]);
      // Another replica sending the same claim lost it: the fire moved on.
      const other = await replica();
      expect((await other.claim([request], 'replica-b', TTL))[0]).toMatchObject({ status: 'moved', due: due! + 60_000 });
      expect((await coordinator.describe(['won']))[0].running).toHaveLength(1);

      await coordinator.requestTrigger('won-trigger', 'MANUAL', 't1');
      const [pending] = (await coordinator.snapshot(['won-trigger'], INSTANCE)).triggers;
      const triggerClaim = { name: 'won-trigger', rev: 1, member: pending.member, next: null };
      const [claimed] = await coordinator.claim([triggerClaim], INSTANCE, TTL);
      expect(claimed.status).toBe('claimed');
      expect(await coordinator.claim([triggerClaim], INSTANCE, TTL)).toEqual([claimed]);
      expect((await other.claim([triggerClaim], 'replica-b', TTL))[0]).toEqual({ status: 'gone' });
      // Once its run has ended, the claim sent again finds nothing to run.
      const token = (claimed as Extract<ClaimResult, { status: 'claimed' }>).fencingToken;
      await coordinator.finish([{ name: 'won-trigger', fencingToken: token, status: 'success', error: null }]);
      expect(await coordinator.claim([triggerClaim], INSTANCE, TTL)).toEqual([{ status: 'gone' }]);
    });

    it('answers a stop or a finish sent again as the first time, and changes nothing more', async () => {
      await coordinator.register([registration('ended'), registration('stopped', { paused: true })], 'boot', INSTANCE);
      const { rev, due } = await state('ended');
      const [claimed] = await coordinator.claim([{ name: 'ended', rev, due: due!, next: { base: due! + 60_000, due: due! + 60_000 } }], INSTANCE, TTL);
      const lease = claimed as Extract<ClaimResult, { status: 'claimed' }>;
      const report = { name: 'ended', fencingToken: lease.fencingToken, status: 'success' as const, error: null };
      expect(await coordinator.finish([report])).toEqual([true]);
      expect(await coordinator.finish([report])).toEqual([true]);
      // Not a finish of this run: its lease is gone and nothing recorded it.
      expect(await coordinator.finish([{ ...report, fencingToken: lease.fencingToken + 1 }])).toEqual([false]);

      const running = await leaseTask(coordinator, 'stopped', INSTANCE, TTL, 2);
      expect(await coordinator.stop('stopped', running.fencingToken, 'stop-1')).toBe(true);
      expect(await coordinator.stop('stopped', running.fencingToken, 'stop-1')).toBe(true);
      expect(await coordinator.stop('stopped', running.fencingToken, 'stop-2')).toBe(false);
    });

    it('applies a pause, resume, lock, unlock or trigger once per request id', async () => {
      await coordinator.register([registration('controlled')], 'boot', INSTANCE);
      expect(await coordinator.pause('controlled', 'pause-1')).toBe(true);
      const { rev } = await state('controlled');
      const next = Date.now() + 60_000;
      const resume = { rev, resume: true, next: { base: next, due: next }, requestId: 'resume-1' };
      expect(await coordinator.reschedule('controlled', resume)).toBe('ok');
      // The pause sent again after the resume changes nothing: its first answer comes back.
      expect(await coordinator.pause('controlled', 'pause-1')).toBe(true);
      expect(await state('controlled')).toMatchObject({ paused: false, due: next });
      // A new pause, then the resume sent again: the job stays paused.
      expect(await coordinator.pause('controlled', 'pause-2')).toBe(true);
      expect(await coordinator.reschedule('controlled', resume)).toBe('ok');
      expect(await state('controlled')).toMatchObject({ paused: true, due: null });

      expect(await coordinator.lock('controlled', 'ops', null, 'lock-1')).toEqual({ status: 'locked' });
      expect(await coordinator.unlock('controlled', 'ops', 'unlock-1')).toBe(true);
      expect(await coordinator.lock('controlled', 'ops', null, 'lock-1')).toEqual({ status: 'locked' });
      expect((await coordinator.describe(['controlled']))[0].locked).toBeNull();
      expect(await coordinator.lock('controlled', 'ops', null, 'lock-2')).toEqual({ status: 'locked' });
      expect(await coordinator.unlock('controlled', 'ops', 'unlock-1')).toBe(true);
      expect((await coordinator.describe(['controlled']))[0].locked).toMatchObject({ by: 'ops' });

      // A trigger id remembered briefly (as the start run's), resent after it expired: still one run.
      const first = await coordinator.requestTrigger('controlled', 'EVENT', 'start', 1, 'trigger-1');
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await coordinator.requestTrigger('controlled', 'EVENT', 'start', 1, 'trigger-1')).toEqual(first);
      expect((await coordinator.snapshot(['controlled'], INSTANCE)).triggers).toHaveLength(0);
    });
  });

  it('re-creates a lost job with the runtime state the replica knew, not only its code', async () => {
    const job = registration('restored');
    const [created] = await coordinator.register(
      [{ ...job, runtime: { spec: { every: 7_000, jitter: 0 }, paused: true }, first: null }],
      'restore',
      INSTANCE,
    );
    expect(created.outcome).toBe('created');
    expect(await state('restored')).toMatchObject({ spec: { every: 7_000 }, paused: true, due: null, definition: job.definition });
  });

  it('re-creates a lost job only with a due time still ahead of its clock: one that has come may have run', async () => {
    const job = registration('lost', { due: Date.now() - 50 });
    const [passed] = await coordinator.register([{ ...job, runtime: { spec: job.definition.spec, paused: false } }], 'restore', INSTANCE);
    expect(passed).toMatchObject({ name: 'lost', outcome: 'passed', now: expect.any(Number) });
    expect((passed as { now: number }).now).toBeGreaterThanOrEqual(job.first!.due);
    expect(await coordinator.snapshot(['lost'], INSTANCE)).toMatchObject({ missing: ['lost'] });

    const ahead = Date.now() + 60_000;
    const [created] = await coordinator.register([{ ...job, runtime: { spec: job.definition.spec, paused: false }, first: { base: ahead, due: ahead } }], 'restore', INSTANCE);
    expect(created.outcome).toBe('created');
    expect((await state('lost')).due).toBe(ahead);
  });

  it('keeps the due time, the revision and a runtime pause when a boot changes only the overlap policy', async () => {
    const due = Date.now() + 3_000;
    await coordinator.register([registration('hourly', { every: 3_600_000, due })], 'boot', INSTANCE);
    const [changed] = await coordinator.register([registration('hourly', { every: 3_600_000, overlap: 'allow', due: due + 3_600_000 })], 'boot', 'new-code');
    expect(changed.outcome).toBe('replaced');
    expect(await state('hourly')).toMatchObject({ rev: 1, due, base: due, overlap: 'allow', definedBy: 'new-code' });

    expect(await coordinator.pause('hourly')).toBe(true);
    const [again] = await coordinator.register([registration('hourly', { every: 3_600_000, overlap: 'queue-one', due: due + 3_600_000 })], 'boot', 'newer-code');
    expect(again.outcome).toBe('replaced');
    expect(await state('hourly')).toMatchObject({ paused: true, due: null, overlap: 'queue-one' });

    // A changed schedule in the code is put in force, re-based.
    const [rescheduled] = await coordinator.register([registration('hourly', { every: 7_200_000, overlap: 'queue-one', paused: false, due: due + 7_200_000 })], 'boot', 'newest-code');
    expect(rescheduled.outcome).toBe('replaced');
    expect(await state('hourly')).toMatchObject({ spec: { every: 7_200_000 }, paused: true });
  });

  it('restarts the period for a manual trigger that runs, not for one skipped when claimed', async () => {
    const due = Date.now() + 60_000;
    await coordinator.register([registration('periodic', { every: 60_000, due })], 'boot', INSTANCE);
    const restarted = () => ({ base: Date.now() + 60_000, due: Date.now() + 60_000 });
    const receipt = await coordinator.requestTrigger('periodic', 'MANUAL', 'first');
    expect(receipt.status).toBe('accepted');
    const [first] = (await coordinator.snapshot(['periodic'], INSTANCE)).triggers;
    // Locked after the request was accepted: the claim consumes the trigger without a run.
    expect(await coordinator.lock('periodic', 'ops', null)).toEqual({ status: 'locked' });
    const [skipped] = await coordinator.claim([{ name: 'periodic', rev: 1, member: first.member, next: restarted() }], INSTANCE, TTL);
    expect(skipped).toMatchObject({ status: 'skipped', reason: 'locked' });
    expect(await state('periodic')).toMatchObject({ due, base: due });

    await coordinator.unlock('periodic', 'ops');
    await coordinator.requestTrigger('periodic', 'MANUAL', 'second');
    const [second] = (await coordinator.snapshot(['periodic'], INSTANCE)).triggers;
    const next = restarted();
    const [ran] = await coordinator.claim([{ name: 'periodic', rev: 1, member: second.member, next }], INSTANCE, TTL);
    expect(ran.status).toBe('claimed');
    expect(await state('periodic')).toMatchObject({ due: next.due });
  });

  it('snapshots thousands of jobs whole and in order (read in batches)', async () => {
    const jobs = Array.from({ length: 1_200 }, (_, i) => registration(`many-${i}`, { due: Date.now() + 60_000 + i }));
    await coordinator.register(jobs, 'boot', INSTANCE);
    await coordinator.requestTrigger('many-1100', 'MANUAL', 'late-batch');
    const snapshot = await coordinator.snapshot([...jobs.map((j) => j.name), 'not-there'], INSTANCE);
    expect(snapshot.states.map((s) => s.due)).toEqual(jobs.map((j) => j.first!.due));
    expect(snapshot.missing).toEqual(['not-there']);
    expect(snapshot.triggers).toMatchObject([{ name: 'many-1100', id: 'late-batch' }]);
  });

  it('pauses and resumes a job for every replica, and announces each change', async () => {
    await coordinator.register([registration('pausable')], 'boot', INSTANCE);
    const other = await replica();
    const announced = firstValueFrom(other.events$.pipe(filter((e) => e.type === 'changed'), take(2), toArray()));
    expect(await coordinator.pause('pausable')).toBe(true);
    expect(await state('pausable')).toMatchObject({ paused: true, due: null });
    const next = Date.now() + 5_000;
    expect(await coordinator.reschedule('pausable', { rev: 7, resume: true, next: { base: next, due: next } })).toBe('stale');
    // The pause bumped the revision: a resume computed before it is stale.
    expect(await coordinator.reschedule('pausable', { rev: 1, resume: true, next: { base: next, due: next } })).toBe('stale');
    expect(await coordinator.reschedule('pausable', { rev: 2, resume: true, next: { base: next, due: next } })).toBe('ok');
    expect(await state('pausable')).toMatchObject({ paused: false, due: next, rev: 3 });
    expect(await announced).toEqual([
      { type: 'changed', names: ['pausable'], version: expect.any(Number) },
      { type: 'changed', names: ['pausable'], version: expect.any(Number) },
    ]);
    expect(await coordinator.pause('nobody')).toBe(false);
  });

  it('keeps a schedule changed at runtime until a replica boots with a changed definition', async () => {
    await coordinator.register([registration('mutable')], 'boot', INSTANCE);
    const next = Date.now() + 5_000;
    expect(await coordinator.reschedule('mutable', { rev: 1, spec: { every: 5_000, jitter: 0 }, next: { base: next, due: next } })).toBe('ok');
    expect(await state('mutable')).toMatchObject({ rev: 2, spec: { every: 5_000, jitter: 0 } });

    // Restarted replicas with the same code keep the runtime schedule.
    const [unchanged] = await (await replica()).register([registration('mutable')], 'boot', 'restarted');
    expect(unchanged.outcome).toBe('unchanged');
    expect(await state('mutable')).toMatchObject({ rev: 2, spec: { every: 5_000 } });

    // Re-creating lost jobs never overrides a definition.
    const [kept] = await coordinator.register([registration('mutable', { every: 2_000 })], 'restore', 'old');
    expect(kept).toMatchObject({ outcome: 'differs', otherBy: INSTANCE });

    // A replica booting with a new definition puts it in force.
    const [replaced] = await coordinator.register([registration('mutable', { every: 2_000 })], 'boot', 'new-code');
    expect(replaced).toMatchObject({ outcome: 'replaced', otherBy: INSTANCE, other: { spec: { every: 1_000 } } });
    expect(await state('mutable')).toMatchObject({ rev: 3, spec: { every: 2_000 } });
  });

  describe('superseded definitions (a rolling deploy that an old replica restarting interrupts)', () => {
    const far = Date.now() + 3_600_000;
    /** v1 (every 1 s) then v2 (every 500 ms), each booted by a live replica. */
    const v1 = (name: string) => registration(name, { every: 1_000, due: far });
    const v2 = (name: string) => registration(name, { every: 500, due: far });

    async function deployed(name: string): Promise<void> {
      await coordinator.heartbeat('r1', TTL);
      await coordinator.heartbeat('r1-v2', TTL);
      expect((await coordinator.register([v1(name)], 'boot', 'r1'))[0].outcome).toBe('created');
      expect((await coordinator.register([v2(name)], 'boot', 'r1-v2'))[0]).toMatchObject({ outcome: 'replaced', otherBy: 'r1' });
    }

    it('keeps the definition in force when a replica boots with one it replaced while a live replica declares it, until none does', async () => {
      await deployed('deployed');
      // An old replica restarts: the cluster keeps v2, and the old replica hears who set it.
      await coordinator.heartbeat('old', TTL);
      const [blocked] = await coordinator.register([v1('deployed')], 'boot', 'old');
      expect(blocked).toEqual({ name: 'deployed', outcome: 'superseded', other: v2('deployed').definition, otherBy: 'r1-v2' });
      expect(await state('deployed')).toMatchObject({ rev: 2, spec: { every: 500 }, definedBy: 'r1-v2' });

      // Offered again while v2 is declared, it stays superseded.
      expect((await coordinator.register([v1('deployed')], 'offer', 'old'))[0].outcome).toBe('superseded');
      // A rollback: once the last replica declaring v2 has left, the old definition offered again takes over.
      await coordinator.heartbeat('r1-v2', TTL, true);
      const [rolledBack] = await coordinator.register([v1('deployed')], 'offer', 'old');
      expect(rolledBack).toMatchObject({ outcome: 'replaced', otherBy: 'r1-v2', other: { spec: { every: 500 } } });
      expect(await state('deployed')).toMatchObject({ rev: 3, spec: { every: 1_000 }, definedBy: 'old' });

      // Now v2 is the superseded one: a v2 replica restarting after the rollback does not take it back.
      await coordinator.heartbeat('r2-v2', TTL);
      expect((await coordinator.register([v2('deployed')], 'boot', 'r2-v2'))[0]).toMatchObject({ outcome: 'superseded', otherBy: 'old' });
      // Re-creating lost jobs is unchanged: a definition in force is kept, whatever the other's history.
      expect((await coordinator.register([v2('deployed')], 'restore', 'r2-v2'))[0]).toMatchObject({ outcome: 'differs', otherBy: 'old' });
    });

    it('counts a declarer whose member entry expired as gone', async () => {
      await deployed('expiring');
      // Their sessions are renewed with a 10 ms TTL, then lapse: any heartbeat drops them.
      await coordinator.heartbeat('r1', 10);
      await coordinator.heartbeat('r1-v2', 10);
      await clockPast(Date.now() + 20);
      await coordinator.heartbeat('old', TTL);
      expect((await coordinator.register([v1('expiring')], 'boot', 'old'))[0]).toMatchObject({ outcome: 'replaced', otherBy: 'r1-v2' });
    });

    it('never creates a job nor replaces a definition not remembered as superseded when a definition is offered again', async () => {
      await coordinator.heartbeat('old', TTL);
      expect((await coordinator.register([v1('offered')], 'offer', 'old'))[0]).toEqual({ name: 'offered', outcome: 'missing' });
      expect((await coordinator.snapshot(['offered'], INSTANCE)).missing).toEqual(['offered']);
      // Created by v2 (as a replica re-creating it after Redis lost its state): v1 has no history here.
      await coordinator.heartbeat('r1-v2', TTL, true);
      await coordinator.register([v2('offered')], 'boot', 'r1-v2');
      expect((await coordinator.register([v1('offered')], 'offer', 'old'))[0]).toMatchObject({ outcome: 'differs', otherBy: 'r1-v2' });
      expect(await state('offered')).toMatchObject({ spec: { every: 500 }, definedBy: 'r1-v2' });
    });

    it('never blocks a forward deploy: a definition never replaced replaces the one in force, declared or not', async () => {
      await deployed('forward');
      await coordinator.heartbeat('r1-v3', TTL);
      const v3 = registration('forward', { every: 250, due: far });
      expect((await coordinator.register([v3], 'boot', 'r1-v3'))[0]).toMatchObject({ outcome: 'replaced', otherBy: 'r1-v2' });
      expect(await state('forward')).toMatchObject({ spec: { every: 250 }, definedBy: 'r1-v3' });
      // Both older ones are superseded now.
      await coordinator.heartbeat('old', TTL);
      expect((await coordinator.register([v1('forward')], 'boot', 'old'))[0].outcome).toBe('superseded');
      expect((await coordinator.register([v2('forward')], 'boot', 'old'))[0].outcome).toBe('superseded');
    });

    it("does not count the booting replica's own earlier declaration: one restarted under the same id with older code replaces", async () => {
      await deployed('same-id');
      // r1-v2 restarts under its id (a stateful set's pod) on the old code, before its member entry expired.
      await coordinator.heartbeat('r1-v2', TTL);
      expect((await coordinator.register([v1('same-id')], 'boot', 'r1-v2'))[0]).toMatchObject({ outcome: 'replaced', otherBy: 'r1-v2' });
    });

    it('remembers the last 8 superseded definitions of a job and the live declarers only', async () => {
      const versions = Array.from({ length: 10 }, (_, i) => registration('bounded', { every: 1_000 * (i + 1), due: far }));
      for (const [i, version] of versions.entries()) {
        await coordinator.heartbeat(`v${i}`, TTL);
        await coordinator.register([version], 'boot', `v${i}`);
        // Each leaves but the last: every one registered the job, none but v9 declares it live.
        if (i < versions.length - 1) await coordinator.heartbeat(`v${i}`, TTL, true);
      }
      expect(await state('bounded')).toMatchObject({ spec: { every: 10_000 }, definedBy: 'v9' });
      await coordinator.heartbeat('late', TTL);
      // v1..v8 are remembered; v0, the 9th back, is forgotten and taken as a new definition.
      expect((await coordinator.register([versions[1]], 'boot', 'late'))[0].outcome).toBe('superseded');
      expect((await coordinator.register([versions[0]], 'boot', 'late'))[0]).toMatchObject({ outcome: 'replaced', otherBy: 'v9' });
      if (coordinator instanceof RedisCoordinator) {
        const redis = coordinator.client;
        expect(JSON.parse((await redis.hget(`{${prefix}}:job:bounded`, 'superseded'))!)).toHaveLength(8);
        // The replicas that left were dropped from the declarers when the job was registered again.
        expect((await redis.hkeys(`{${prefix}}:declared:bounded`)).sort()).toEqual(['late', 'v9']);
      }
    });
  });

  it('locks a job by hand: refused while it runs, fires skipped while locked, free again once unlocked', async () => {
    await coordinator.register([registration('lockable')], 'boot', INSTANCE);
    const { due, rev } = await state('lockable');
    const [run] = (await coordinator.claim([{ name: 'lockable', rev, due: due!, next: { base: due! + 1, due: due! + 1 } }], INSTANCE, TTL)) as Extract<
      ClaimResult,
      { status: 'claimed' }
    >[];
    expect(await coordinator.lock('lockable', 'ops', null)).toEqual({ status: 'refused', reason: 'running', holder: INSTANCE });
    await coordinator.finish([{ name: 'lockable', fencingToken: run.fencingToken, status: 'success', error: null }]);
    expect(await coordinator.lock('lockable', 'ops', null)).toEqual({ status: 'locked' });
    expect(await coordinator.lock('lockable', 'someone-else', null)).toEqual({ status: 'refused', reason: 'locked', holder: 'ops' });
    const current = await state('lockable');
    const [skipped] = await coordinator.claim([{ name: 'lockable', rev, due: current.due!, next: { base: current.due! + 1, due: current.due! + 1 } }], INSTANCE, TTL);
    expect(skipped).toMatchObject({ status: 'skipped', reason: 'locked', holder: 'ops' });
    expect(await coordinator.unlock('lockable', 'someone-else')).toBe(true);
    expect((await coordinator.describe(['lockable']))[0].locked).toMatchObject({ by: 'ops' });
    expect(await coordinator.unlock('lockable', 'ops')).toBe(true);
    const after = await state('lockable');
    const [claimed] = await coordinator.claim([{ name: 'lockable', rev, due: after.due!, next: null }], INSTANCE, TTL);
    expect(claimed.status).toBe('claimed');
    expect(await coordinator.lock('nobody', 'ops', null)).toBe('unknown');
  });

  describe('missed due times (the plan a replica sends with a late claim)', () => {
    type Claimed = Extract<ClaimResult, { status: 'claimed' }>;
    const MINUTE = 60_000;
    /** A job whose due time came ten minutes ago (every minute): ten due times have come since. */
    async function overdue(name: string, overlap: OverlapPolicy = 'skip') {
      const due = Date.now() - 10 * MINUTE;
      await coordinator.register([registration(name, { every: MINUTE, due, overlap })], 'boot', INSTANCE);
      const { rev } = await state(name);
      return { due, rev };
    }

    it("runs the due time the plan serves, marked catch-up, and counts the ones it skips ('once')", async () => {
      const { due, rev } = await overdue('once');
      const latest = due + 9 * MINUTE;
      const next = due + 11 * MINUTE;
      const missed = { serve: latest, catchUp: true, skipped: 9, through: latest, episodeTo: latest };
      const [run] = (await coordinator.claim([{ name: 'once', rev, due, next: { base: next, due: next }, missed }], INSTANCE, TTL)) as Claimed[];
      expect(run).toMatchObject({ status: 'claimed', scheduledAt: latest, trigger: 'SCHEDULE', catchUp: true, continued: false });
      const [record] = await coordinator.describe(['once']);
      expect(record).toMatchObject({ skippedMissed: 9, catchUpRuns: 1, served: latest, due: next, skippedLate: 0 });
      expect(record.running).toMatchObject([{ fencingToken: run.fencingToken, scheduledAt: latest, catchUp: true }]);
      expect(record.lastRun).toMatchObject({ scheduledAt: latest, catchUp: true });
      // Its own lease, as a replica that lost the reply would adopt it.
      expect((await coordinator.snapshot(['once'], INSTANCE)).ownLeases).toMatchObject([{ fencingToken: run.fencingToken, catchUp: true }]);
      // Sent again: the same run, not a second one.
      const [again] = (await coordinator.claim([{ name: 'once', rev, due, next: { base: next, due: next }, missed }], INSTANCE, TTL)) as Claimed[];
      expect(again).toMatchObject({ status: 'claimed', fencingToken: run.fencingToken, catchUp: true });
    });

    it("consumes the missed due times without a run when the plan serves none ('skip'), and counts them", async () => {
      const { due, rev } = await overdue('skip-all');
      const through = due + 10 * MINUTE;
      const next = due + 11 * MINUTE;
      const [result] = await coordinator.claim(
        [{ name: 'skip-all', rev, due, next: { base: next, due: next }, missed: { serve: null, catchUp: false, skipped: 11, through, episodeTo: through } }],
        INSTANCE,
        TTL,
      );
      expect(result).toEqual({ status: 'missed', skipped: 11, through });
      const [record] = await coordinator.describe(['skip-all']);
      expect(record).toMatchObject({ skippedMissed: 11, catchUpRuns: 0, served: through, due: next, running: [], lastRun: null });
    });

    it('refuses a plan that would serve a due time before the expected one, not yet come, or already served, and writes nothing', async () => {
      const { due, rev } = await overdue('checked');
      const next = { base: due + 11 * MINUTE, due: due + 11 * MINUTE };
      const plan = (serve: number | null, through: number) => ({ serve, catchUp: serve !== null, skipped: 1, through, episodeTo: through });
      const refused = [
        { next, missed: plan(due - 1, due) },
        { next, missed: plan(due, Date.now() + MINUTE) },
        { next, missed: plan(due + 5 * MINUTE, due + 4 * MINUTE) },
        { next: { base: due + MINUTE, due: due + MINUTE }, missed: plan(due + 2 * MINUTE, due + 2 * MINUTE) },
      ];
      for (const request of refused) expect((await coordinator.claim([{ name: 'checked', rev, due, ...request }], INSTANCE, TTL))[0].status).toBe('stale');
      expect(await coordinator.describe(['checked'])).toMatchObject([{ skippedMissed: 0, catchUpRuns: 0, served: null, due, running: [] }]);
      // Once a due time is served, a plan cannot serve it or one before it again.
      const first = due + 3 * MINUTE;
      const [run] = (await coordinator.claim([{ name: 'checked', rev, due, next: { base: due + 4 * MINUTE, due: due + 4 * MINUTE }, missed: plan(first, first) }], INSTANCE, TTL)) as Claimed[];
      expect(run.status).toBe('claimed');
      await coordinator.finish([{ name: 'checked', fencingToken: run.fencingToken, status: 'success', error: null }]);
      const again = due + 4 * MINUTE;
      expect((await coordinator.claim([{ name: 'checked', rev, due: again, next, missed: plan(first, first) }], INSTANCE, TTL))[0].status).toBe('stale');
    });

    it('runs catch-up runs one at a time: a catch-up waits for any run, a due fire waits for a catch-up run; nothing is consumed meanwhile', async () => {
      const { due, rev } = await overdue('one-at-a-time', 'allow');
      const at = (k: number) => due + k * MINUTE;
      const chain = (k: number, last = 9) => ({ serve: at(k), catchUp: true, skipped: 0, through: at(k), episodeTo: at(last) });
      const [first] = (await coordinator.claim([{ name: 'one-at-a-time', rev, due, next: { base: at(1), due: at(1) }, missed: chain(0) }], INSTANCE, TTL)) as Claimed[];
      expect(first).toMatchObject({ status: 'claimed', scheduledAt: due, catchUp: true, continued: false });
      // The next catch-up, from another replica: busy, with the holder and its lease's expiry.
      const other = await replica();
      const [busy] = await other.claim([{ name: 'one-at-a-time', rev, due: at(1), next: { base: at(2), due: at(2) }, missed: chain(1) }], 'replica-b', TTL);
      expect(busy).toMatchObject({ status: 'busy', holder: INSTANCE });
      expect((busy as { expiresAt: number }).expiresAt).toBeGreaterThan(Date.now());
      // An ordinary due fire waits too, whatever the overlap policy ('allow' here).
      const [plain] = await other.claim([{ name: 'one-at-a-time', rev, due: at(1), next: { base: at(12), due: at(12) } }], 'replica-b', TTL);
      expect(plain.status).toBe('busy');
      expect(await coordinator.describe(['one-at-a-time'])).toMatchObject([{ due: at(1), served: due, catchUpRuns: 1 }]);
      await coordinator.finish([{ name: 'one-at-a-time', fencingToken: first.fencingToken, status: 'success', error: null }]);
      const [second] = (await other.claim([{ name: 'one-at-a-time', rev, due: at(1), next: { base: at(2), due: at(2) }, missed: chain(1) }], 'replica-b', TTL)) as Claimed[];
      expect(second).toMatchObject({ status: 'claimed', scheduledAt: at(1), catchUp: true, continued: true });
      // A catch-up waits for an ordinary run as well (a manual trigger, say).
      await other.finish([{ name: 'one-at-a-time', fencingToken: second.fencingToken, status: 'success', error: null }]);
      expect((await coordinator.requestTrigger('one-at-a-time', 'MANUAL', 'by-hand')).status).toBe('accepted');
      const { triggers } = await coordinator.snapshot(['one-at-a-time'], INSTANCE);
      const [manual] = (await coordinator.claim([{ name: 'one-at-a-time', rev, member: triggers[0].member, next: null }], INSTANCE, TTL)) as Claimed[];
      expect(manual).toMatchObject({ status: 'claimed', trigger: 'MANUAL' });
      expect((await coordinator.claim([{ name: 'one-at-a-time', rev, due: at(2), next: { base: at(3), due: at(3) }, missed: chain(2) }], INSTANCE, TTL))[0].status).toBe('busy');
      expect(await coordinator.describe(['one-at-a-time'])).toMatchObject([{ due: at(2), catchUpRuns: 2 }]);
      // A due time the episode planned, claimed as an ordinary fire (found within the grace), is a catch-up run all the same.
      await coordinator.finish([{ name: 'one-at-a-time', fencingToken: manual.fencingToken, status: 'success', error: null }]);
      const [third] = (await coordinator.claim([{ name: 'one-at-a-time', rev, due: at(2), next: { base: at(3), due: at(3) } }], INSTANCE, TTL)) as Claimed[];
      expect(third).toMatchObject({ status: 'claimed', scheduledAt: at(2), catchUp: true, continued: true });
      expect(await coordinator.describe(['one-at-a-time'])).toMatchObject([{ catchUpRuns: 3 }]);
    });

    it('judges the threshold on the due time the plan serves: a catch-up later than it is skipped as late', async () => {
      const { due, rev } = await overdue('strict');
      const latest = due + 9 * MINUTE;
      const next = due + 11 * MINUTE;
      const [result] = await coordinator.claim(
        [{ name: 'strict', rev, due, threshold: 1_000, next: { base: next, due: next }, missed: { serve: latest, catchUp: true, skipped: 9, through: latest, episodeTo: latest } }],
        INSTANCE,
        TTL,
      );
      expect(result).toMatchObject({ status: 'late', scheduledAt: latest });
      expect(await coordinator.describe(['strict'])).toMatchObject([{ skippedLate: 1, skippedMissed: 9, catchUpRuns: 0, served: latest, due: next, running: [] }]);
    });
  });

  it('records the last run and reports a job the coordinator lost as missing', async () => {
    await coordinator.register([registration('recorded')], 'boot', INSTANCE);
    const { due, rev } = await state('recorded');
    const [run] = (await coordinator.claim([{ name: 'recorded', rev, due: due!, next: { base: due! + 60_000, due: due! + 60_000 } }], INSTANCE, TTL)) as Extract<
      ClaimResult,
      { status: 'claimed' }
    >[];
    await coordinator.finish([{ name: 'recorded', fencingToken: run.fencingToken, status: 'error', error: 'boom' }]);
    const [record] = await coordinator.describe(['recorded']);
    expect(record.lastRun).toMatchObject({ fencingToken: run.fencingToken, instanceId: INSTANCE, status: 'error', error: 'boom', scheduledAt: due, trigger: 'SCHEDULE' });
    expect(record.running).toEqual([]);
    expect(await coordinator.snapshot(['recorded', 'ghost'], INSTANCE)).toMatchObject({ missing: ['ghost'] });
    const [missing] = await coordinator.claim([{ name: 'ghost', rev: 1, due: 1, next: null }], INSTANCE, TTL);
    expect(missing.status).toBe('missing');
  });

  it('exports every job whole, and restores each lost job once, with served and fences raised to its clock', async () => {
    await coordinator.register([registration('tick'), registration('held', { due: Date.now() + 60_000 }), registration('still', { paused: true })], 'boot', INSTANCE);
    const { rev, due } = await state('tick');
    const [run] = (await coordinator.claim([{ name: 'tick', rev, due: due!, next: { base: due! + 60_000, due: due! + 60_000 } }], INSTANCE, TTL)) as Extract<
      ClaimResult,
      { status: 'claimed' }
    >[];
    await coordinator.finish([{ name: 'tick', fencingToken: run.fencingToken, status: 'success', error: null }]);
    expect(await coordinator.saveCheckpoint('tick', run.fencingToken, '{"n":1}', 123)).toEqual({ status: 'saved' });
    expect(await coordinator.lock('held', 'ops', null)).toEqual({ status: 'locked' });

    const exported = await coordinator.exportState();
    expect(exported.jobs.map((job) => job.name)).toEqual(['held', 'still', 'tick']);
    const tick = exported.jobs.find((job) => job.name === 'tick')!;
    expect(tick).toMatchObject({
      served: due,
      fence: run.fencingToken,
      due: due! + 60_000,
      lastRun: { fencingToken: run.fencingToken, status: 'success' },
      checkpoint: { state: '{"n":1}', savedAt: 123, fencingToken: run.fencingToken, fence: run.fencingToken },
    });
    expect(exported.jobs.find((job) => job.name === 'held')).toMatchObject({ locked: { by: 'ops', until: null }, paused: false });
    expect(exported.jobs.find((job) => job.name === 'still')).toMatchObject({ paused: true, due: null });

    // Restored elsewhere (a lost Redis: a fresh prefix), by several replicas at once: each job once.
    const lostPrefix = uniquePrefix('restored');
    const fresh = create(lostPrefix);
    await connected(fresh);
    const restorers = shared ? [fresh, ...(await Promise.all([1, 2, 3].map(async () => {
      const other = create(lostPrefix);
      others.push(other);
      await connected(other);
      return other;
    })))] : [fresh, fresh, fresh];
    try {
      const restores = exported.jobs.map((job) => ({ job, first: job.due !== null ? { base: job.due, due: Math.max(job.due, Date.now() + 30_000) } : null, fenceFloor: job.fence, exact: false }));
      const before = Date.now();
      const outcomes = await Promise.all(restorers.map((r, i) => r.restoreState(restores, `replica-${i}`)));
      for (let job = 0; job < restores.length; job++) {
        expect(outcomes.filter((perReplica) => perReplica[job].outcome === 'restored')).toHaveLength(1);
        expect(outcomes.filter((perReplica) => perReplica[job].outcome === 'present')).toHaveLength(restorers.length - 1);
      }
      const [restoredTick] = await fresh.describe(['tick']);
      expect(restoredTick.served).toBeGreaterThanOrEqual(before);
      expect(restoredTick.lastRun).toMatchObject({ fencingToken: run.fencingToken, status: 'success' });
      expect((await fresh.describe(['held']))[0].locked).toEqual({ by: 'ops', until: null });
      expect((await fresh.describe(['still']))[0]).toMatchObject({ paused: true, due: null });
      // The checkpoint is back; a run from before the restore can no longer write it.
      expect(await fresh.readCheckpoint('tick')).toEqual({ state: '{"n":1}', savedAt: 123, fencingToken: run.fencingToken });
      expect(await fresh.saveCheckpoint('tick', run.fencingToken, '{"n":2}', 456)).toMatchObject({ status: 'stale' });
      // A due time that has come is not restored.
      const gone = { ...tick, name: 'late' };
      expect(await fresh.restoreState([{ job: gone, first: { base: 1, due: 1 }, fenceFloor: 0, exact: false }], INSTANCE)).toEqual([{ name: 'late', outcome: 'passed', now: expect.any(Number) }]);
      // From a final snapshot it is: `served` and the due time as they were (the missed-run policy serves it), the last run whole.
      const final = { ...tick, name: 'final', served: 1_000, lastRun: { ...tick.lastRun!, scheduledAt: 900, catchUp: true } };
      expect(await fresh.restoreState([{ job: final, first: { base: 1, due: 2_000 }, fenceFloor: 0, exact: true }], INSTANCE)).toEqual([{ name: 'final', outcome: 'restored' }]);
      expect((await fresh.describe(['final']))[0]).toMatchObject({ served: 1_000, due: 2_000, lastRun: { catchUp: true } });
      // The next run's token is above every token issued before.
      const lease = await leaseTask(fresh, 'tick', INSTANCE, TTL, 1);
      expect(lease.fencingToken).toBeGreaterThan(run.fencingToken);
      expect(lease.fencingToken).toBeGreaterThanOrEqual(before);
    } finally {
      if (fresh !== coordinator) await fresh.close().catch(() => undefined);
    }
  });
});

/**
 * Resolves once the clock has passed `at` (a lease's expiry, on Redis's clock: the same machine's),
 * instead of sleeping a guess that a loaded machine may outrun.
 */
async function clockPast(at: number): Promise<void> {
  while (Date.now() <= at + 1) await new Promise((resolve) => setTimeout(resolve, Math.max(1, at + 2 - Date.now())));
}
