import { firstValueFrom, filter, take, toArray } from 'rxjs';
import { ClaimResult, CoordinationEvent, Coordinator, JobRegistration, MAX_PENDING_TRIGGERS } from '../lib/coordination/coordinator.interface';
import { EmbeddedCoordinator } from '../lib/coordination/embedded/embedded.coordinator';
import { RedisCoordinator } from '../lib/coordination/redis/redis.coordinator';
import type { OverlapPolicy } from '../lib/scheduling/distributed-job-options.interface';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';

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

  it('gives every run a fencing token above the previous one', async () => {
    await coordinator.register([registration('fenced', { overlap: 'allow' })], 'boot', INSTANCE);
    const tokens: number[] = [];
    for (let i = 0; i < 5; i++) {
      const { due, rev } = await state('fenced');
      const [result] = await coordinator.claim([{ name: 'fenced', rev, due: due!, next: { base: Date.now() - 1, due: Date.now() - 1 } }], INSTANCE, TTL);
      expect(result.status).toBe('claimed');
      tokens.push((result as { fencingToken: number }).fencingToken);
    }
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]);
    expect(tokens[0]).toBeGreaterThanOrEqual(Date.now() - 60_000);
  });

  describe('overlap', () => {
    async function claimDue(name: string, on: Coordinator = coordinator, instance = INSTANCE): Promise<ClaimResult> {
      const { due, rev } = await state(name);
      const next = Date.now() - 1;
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
      const [first] = await coordinator.claim([{ name: 'queue-dead', rev, due: due!, next: { base: Date.now() - 1, due: Date.now() - 1 } }], 'dead', 1_000);
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
      const lease = await coordinator.lease('orphan', 'dead', 1_000, 7);
      expect(lease).toEqual({ fencingToken: expect.any(Number), startedAt: expect.any(Number) });
      const { ownLeases } = await coordinator.snapshot(['orphan'], 'dead');
      expect(ownLeases).toEqual([expect.objectContaining({ name: 'orphan', fencingToken: lease!.fencingToken, taskId: 7, trigger: 'EVENT' })]);
      await clockPast(lease!.startedAt + 1_000); // the dead replica's lease runs out
      expect(await coordinator.stop('orphan', lease!.fencingToken)).toBe(false);
      expect(await coordinator.lease('unknown', 'dead', 50, 8)).toBeNull();
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
      const [first] = await coordinator.claim([{ name: 'lease', rev, due: due!, next: { base: Date.now() - 1, due: Date.now() - 1 } }], 'dead', 1_000);
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
    const results = await Promise.all([coordinator, other].map((c) => c.claim([{ name: 'manual', rev: 1, member, next: null }], INSTANCE, TTL)));
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
      // Other overlap policies decide when the trigger is claimed: it is accepted.
      await coordinator.lease('parallel', 'replica-b', TTL, 1);
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

  it('tells a replica of its own live leases, so a run whose claim reply was lost is not lost', async () => {
    await coordinator.register([registration('orphan')], 'boot', INSTANCE);
    const { due, rev } = await state('orphan');
    const [result] = await coordinator.claim([{ name: 'orphan', rev, due: due!, next: { base: due! + 60_000, due: due! + 60_000 } }], INSTANCE, TTL);
    const { fencingToken } = result as Extract<ClaimResult, { status: 'claimed' }>;
    expect((await coordinator.snapshot(['orphan'], INSTANCE)).ownLeases).toEqual([
      { name: 'orphan', fencingToken, scheduledAt: due, startedAt: expect.any(Number), trigger: 'SCHEDULE' },
    ]);
    expect((await coordinator.snapshot(['orphan'], 'another-replica')).ownLeases).toEqual([]);
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

  it('pauses and resumes a job for every replica, and announces each change', async () => {
    await coordinator.register([registration('pausable')], 'boot', INSTANCE);
    const other = await replica();
    const announced = firstValueFrom(other.events$.pipe(filter((e) => e.type === 'changed'), take(2), toArray()));
    expect(await coordinator.pause('pausable')).toBe(true);
    expect(await state('pausable')).toMatchObject({ paused: true, due: null });
    const next = Date.now() + 5_000;
    expect(await coordinator.reschedule('pausable', { rev: 7, resume: true, next: { base: next, due: next } })).toBe('stale');
    expect(await coordinator.reschedule('pausable', { rev: 1, resume: true, next: { base: next, due: next } })).toBe('ok');
    expect(await state('pausable')).toMatchObject({ paused: false, due: next });
    expect(await announced).toEqual([
      { type: 'changed', names: ['pausable'] },
      { type: 'changed', names: ['pausable'] },
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

  it('locks a job by hand: refused while it runs, fires skipped while locked, free again once unlocked', async () => {
    await coordinator.register([registration('lockable')], 'boot', INSTANCE);
    const { due, rev } = await state('lockable');
    const [run] = (await coordinator.claim([{ name: 'lockable', rev, due: due!, next: { base: Date.now() - 1, due: Date.now() - 1 } }], INSTANCE, TTL)) as Extract<
      ClaimResult,
      { status: 'claimed' }
    >[];
    expect(await coordinator.lock('lockable', 'ops', null)).toEqual({ status: 'refused', reason: 'running', holder: INSTANCE });
    await coordinator.finish([{ name: 'lockable', fencingToken: run.fencingToken, status: 'success', error: null }]);
    expect(await coordinator.lock('lockable', 'ops', null)).toEqual({ status: 'locked' });
    expect(await coordinator.lock('lockable', 'someone-else', null)).toEqual({ status: 'refused', reason: 'locked', holder: 'ops' });
    const current = await state('lockable');
    const [skipped] = await coordinator.claim([{ name: 'lockable', rev, due: current.due!, next: { base: Date.now() - 1, due: Date.now() - 1 } }], INSTANCE, TTL);
    expect(skipped).toMatchObject({ status: 'skipped', reason: 'locked', holder: 'ops' });
    expect(await coordinator.unlock('lockable', 'someone-else')).toBe(true);
    expect((await coordinator.describe(['lockable']))[0].locked).toMatchObject({ by: 'ops' });
    expect(await coordinator.unlock('lockable', 'ops')).toBe(true);
    const after = await state('lockable');
    const [claimed] = await coordinator.claim([{ name: 'lockable', rev, due: after.due!, next: null }], INSTANCE, TTL);
    expect(claimed.status).toBe('claimed');
    expect(await coordinator.lock('nobody', 'ops', null)).toBe('unknown');
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
});

/**
 * Resolves once the clock has passed `at` (a lease's expiry, on Redis's clock: the same machine's),
 * instead of sleeping a guess that a loaded machine may outrun.
 */
async function clockPast(at: number): Promise<void> {
  while (Date.now() <= at + 1) await new Promise((resolve) => setTimeout(resolve, Math.max(1, at + 2 - Date.now())));
}
