import type { ReplicaMessage } from './fixtures/replica.main';
import { HEARTBEAT_INTERVAL_MS } from '../lib/scheduler.constants';
import { Replica, RunEvent } from './support/replica';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';
import { eventually, EventLog } from './support/wait';

type StepEvent = Extract<ReplicaMessage, { type: 'step' }>;
type Described = {
  recoveredRuns: number;
  abandonedRuns: number;
  running: unknown[];
  pendingRetries: unknown[];
  lastRun: { fencingToken: number; status: string; attempt: number; error: string | null } | null;
};

const LOCK_TTL = 2_000;
/** Recovery comes within lockTtl plus one heartbeat of the last renewal; a generous bound on top. */
const RECOVERY_BOUND_MS = LOCK_TTL + HEARTBEAT_INTERVAL_MS + 2_000;

/**
 * Runs whose replica died are recovered on another replica as a new attempt (real processes on
 * one Redis): after kill -9 mid-run, attempt 2 starts elsewhere within lockTtl plus a heartbeat,
 * from the last checkpoint; a job with one attempt is not run again, and counted as abandoned;
 * a replica paused (SIGSTOP) past its lease comes back (SIGCONT) as a zombie whose end and
 * checkpoints do not overwrite the recovered attempt's.
 */
describe('recovery of runs whose replica died, across real replicas', () => {
  jest.setTimeout(90_000);
  const log = new EventLog<ReplicaMessage>();
  const replicas: Replica[] = [];
  const runsOf = (name: string) => log.events.filter((event): event is RunEvent => event.type === 'run' && event.name === name);
  const stepsOf = (token: number) => log.events.filter((event): event is StepEvent => event.type === 'step' && event.fencingToken === token);

  afterEach(async () => {
    await Promise.all(replicas.splice(0).map((replica) => (replica.resume(), replica.kill())));
  });

  async function start(jobs: object[], keyPrefix: string): Promise<[Replica, Replica]> {
    const started = await Promise.all(
      ['r1', 'r2'].map((instanceId) => Replica.start({ redisUrl: SHARED_REDIS_URL, keyPrefix, instanceId, jobs: jobs as never, lockTtl: LOCK_TTL }, log)),
    );
    replicas.push(...started);
    return started as [Replica, Replica];
  }

  /** The replica running `run`, and the other one. */
  const holderOf = (run: RunEvent) => [replicas.find((r) => r.instanceId === run.instanceId)!, replicas.find((r) => r.instanceId !== run.instanceId)!] as const;

  it('kill -9 mid-run: another replica runs attempt 2 within lockTtl + a heartbeat, from the last checkpoint', async () => {
    const name = 'import';
    const [r1] = await start([{ name, steps: 40, stepMs: 100, checkpoint: { maxUpdates: 1 }, retry: { attempts: 3 } }], uniquePrefix('recovery-e2e'));
    await r1.call('trigger', name);
    const first = await log.until('attempt 1', () => runsOf(name)[0]);
    expect(first).toMatchObject({ attempt: 1, fromStep: null });
    await log.until('a few steps of attempt 1', () => stepsOf(first.fencingToken).length >= 5);
    const [holder, survivor] = holderOf(first);
    await holder.kill();
    const killedAt = Date.now();
    // Nothing writes after the kill: this is the last checkpoint attempt 2 must start from.
    const last = await survivor.call<{ state: { step: number; token: number } } | null>('checkpoint', name);
    expect(last!.state.token).toBe(first.fencingToken);

    const second = await log.until('attempt 2', () => runsOf(name)[1], RECOVERY_BOUND_MS + 5_000);
    const after = Date.now() - killedAt;
    expect(second).toMatchObject({ instanceId: survivor.instanceId, attempt: 2, scheduledAt: first.scheduledAt, trigger: 'MANUAL', fromStep: last!.state.step });
    expect(second.fencingToken).toBeGreaterThan(first.fencingToken);
    expect(after).toBeLessThan(RECOVERY_BOUND_MS);
    // Not before its lease could have expired (its last renewal was at most lockTtl / 3 before the kill).
    expect(second.startedAt - killedAt).toBeGreaterThan(LOCK_TTL - LOCK_TTL / 3 - 200);

    const done = await eventually('attempt 2 succeeded', () => survivor.call<Described>('describe', name), (job) => job.lastRun?.status === 'success', 15_000);
    expect(done).toMatchObject({ recoveredRuns: 1, abandonedRuns: 0, pendingRetries: [], lastRun: { fencingToken: second.fencingToken, attempt: 2 } });
    // It went on from the checkpoint: no step done twice, every step done.
    expect(stepsOf(second.fencingToken).map((event) => event.step)[0]).toBe(last!.state.step + 1);
    expect(stepsOf(second.fencingToken).at(-1)!.step).toBe(40);
    expect(runsOf(name)).toHaveLength(2);
  });

  it('kill -9 mid-run of a job without retries (attempts 1): not run again, counted as abandoned', async () => {
    const name = 'once';
    const [r1] = await start([{ name, busyMs: 30_000 }], uniquePrefix('recovery-e2e'));
    await r1.call('trigger', name);
    const first = await log.until('the run', () => runsOf(name)[0]);
    const [holder, survivor] = holderOf(first);
    await holder.kill();
    const job = await eventually('the run counted as abandoned', () => survivor.call<Described>('describe', name), (record) => record.abandonedRuns === 1, RECOVERY_BOUND_MS);
    expect(job).toMatchObject({ recoveredRuns: 0, running: [], pendingRetries: [], lastRun: { fencingToken: first.fencingToken, status: 'abandoned' } });
    expect(job.lastRun!.error).toMatch(/no attempt left \(retry\.attempts 1\)/);
    // Given the time a recovery would have taken and more: nothing ran again.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(runsOf(name)).toHaveLength(1);
  });

  it('SIGSTOP past lockTtl: the recovered attempt runs; after SIGCONT the zombie neither ends the run nor overwrites its checkpoint', async () => {
    const name = 'paused';
    const [r1] = await start([{ name, steps: 30, stepMs: 100, checkpoint: { maxUpdates: 1 }, retry: { attempts: 3 } }], uniquePrefix('recovery-e2e'));
    await r1.call('trigger', name);
    const first = await log.until('attempt 1', () => runsOf(name)[0]);
    await log.until('a few steps of attempt 1', () => stepsOf(first.fencingToken).length >= 3);
    const [holder, survivor] = holderOf(first);
    holder.pause();
    const second = await log.until('attempt 2, recovered while the holder is paused', () => runsOf(name)[1], RECOVERY_BOUND_MS + 5_000);
    expect(second).toMatchObject({ instanceId: survivor.instanceId, attempt: 2 });
    await eventually('attempt 2 succeeded', () => survivor.call<Described>('describe', name), (job) => job.lastRun?.status === 'success', 15_000);

    holder.resume();
    // The zombie's handler goes on (it ignores its signal), checkpointing: its run was aborted
    // (lease lost) and its checkpoint writes are refused, below the recovered attempt's token.
    await log.until('the zombie counts steps after it resumed', () => stepsOf(first.fencingToken).filter((event) => event.aborted).length >= 2);
    // Give the zombie's late writes (finish, checkpoint flush) time to reach Redis if they were to.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const job = await survivor.call<Described>('describe', name);
    expect(job).toMatchObject({ recoveredRuns: 1, running: [], lastRun: { fencingToken: second.fencingToken, status: 'success', attempt: 2 } });
    const checkpoint = await survivor.call<{ state: { step: number; token: number }; fencingToken: number }>('checkpoint', name);
    expect(checkpoint).toMatchObject({ fencingToken: second.fencingToken, state: { step: 30, token: second.fencingToken } });
    // The handlers' own log: the zombie's token is below the recovered attempt's, and every step
    // the recovered attempt wrote came after the zombie's last flushed one.
    expect(first.fencingToken).toBeLessThan(second.fencingToken);
    expect(runsOf(name).map((run) => run.fencingToken)).toEqual([first.fencingToken, second.fencingToken]);
  });
});
