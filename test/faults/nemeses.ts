import type { FaultCluster, FaultReplica, RunMessage } from './fault-cluster';
import type { Random } from './random';

/**
 * The nemeses: each does one fault to the cluster and writes what it did, and when, to the
 * history (the checker's allowances are computed from those lines). Their timing is the fault
 * under test, so they wait on the clock (and on runs, where a run is what they aim at).
 */
export interface NemesisContext {
  cluster: FaultCluster;
  random: Random;
  /** When the nemesis phase ends (epoch ms). */
  deadline: number;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

export const running = (ctx: NemesisContext) => Date.now() < ctx.deadline;

/** The replica running `job` right now (a start without an end), waiting for one to start if none is. */
export async function holderOf(ctx: NemesisContext, job: string): Promise<FaultReplica> {
  const message = await currentRun(ctx, job);
  return ctx.cluster.replica(message.instance);
}

/** The run of `job` in progress on a live replica (its start message), waiting for one to start if none is. */
export function currentRun(ctx: NemesisContext, job: string): Promise<RunMessage> {
  return ctx.cluster.events.until(`a run of ${job} in progress`, (events) => {
    const ended = new Set(events.filter((event) => event.type === 'end').map(runKey));
    return [...events]
      .reverse()
      .find((event) => event.type === 'start' && event.job === job && !ended.has(runKey(event)) && ctx.cluster.replicas.get(event.instance)?.alive);
  });
}

/** The first run of `job` started after `since` (true time), waiting for it. */
export function runStartedAfter(ctx: NemesisContext, job: string, since: number, timeoutMs = 15_000): Promise<RunMessage> {
  return ctx.cluster.events.until(`a run of ${job} started after ${new Date(since).toISOString()}`, (events) => events.find((event) => event.type === 'start' && event.job === job && event.start! > since), timeoutMs);
}

const runKey = (event: RunMessage) => `${event.job}|${event.token}|${event.instance}`;

/** The next due time of a periodic job after `after`, from the due times its runs reported. */
export function nextDue(ctx: NemesisContext, job: string, every: number, after = Date.now()): number | null {
  const last = [...ctx.cluster.events.events].reverse().find((event) => event.type === 'start' && event.job === job);
  if (!last) return null;
  return last.due + Math.ceil((after - last.due) / every) * every;
}

/** Resolves when some job has started a run after `since`: the cluster works again after a fault. */
export async function recovered(ctx: NemesisContext, since = Date.now()): Promise<void> {
  await ctx.cluster.events.until('a run after the fault', (events) => events.some((event) => event.type === 'start' && event.start! > since), 30_000);
}

export function kill(ctx: NemesisContext, replica: FaultReplica): Promise<void> {
  ctx.cluster.history.nemesis('kill', { instance: replica.instanceId });
  replica.signal('SIGKILL');
  return replica.exited;
}

/** SIGSTOP for `ms`, then SIGCONT: the process keeps its state and wakes up believing it holds its leases. */
export async function freeze(ctx: NemesisContext, replica: FaultReplica, ms: number): Promise<void> {
  stopProcess(ctx, replica);
  await sleep(ms);
  continueProcess(ctx, replica);
}

/** SIGSTOP, until `continueProcess` (or a kill: SIGKILL ends a stopped process too). */
export function stopProcess(ctx: NemesisContext, replica: FaultReplica): void {
  ctx.cluster.history.nemesis('stop', { instance: replica.instanceId });
  replica.signal('SIGSTOP');
}

export function continueProcess(ctx: NemesisContext, replica: FaultReplica): void {
  replica.signal('SIGCONT');
  ctx.cluster.history.nemesis('cont', { instance: replica.instanceId });
}

/** SIGTERM: the app shuts down gracefully, draining its runs; resolves when the process is gone. */
export async function terminate(ctx: NemesisContext, replica: FaultReplica): Promise<void> {
  ctx.cluster.history.nemesis('term', { instance: replica.instanceId });
  replica.signal('SIGTERM');
  await replica.exited;
  ctx.cluster.history.nemesis('exit', { instance: replica.instanceId });
}

/** Redis killed -9 and restarted after `downMs`, empty (it has no persistence). */
export async function restartRedisEmpty(ctx: NemesisContext, downMs: number): Promise<void> {
  ctx.cluster.history.nemesis('redis-down');
  await ctx.cluster.redis.stop();
  await sleep(downMs);
  await ctx.cluster.redis.start();
  ctx.cluster.history.nemesis('redis-up', { detail: 'empty' });
}

export async function flushall(ctx: NemesisContext): Promise<void> {
  await ctx.cluster.redisClient.flushall();
  ctx.cluster.history.nemesis('flushall');
}

/** CLIENT PAUSE … WRITE: every command that may write (scripts included) waits `ms`. */
export async function clientPause(ctx: NemesisContext, ms: number): Promise<void> {
  const at = Date.now();
  await ctx.cluster.redisClient.call('CLIENT', 'PAUSE', String(ms), 'WRITE');
  ctx.cluster.history.nemesis('client-pause', { at, until: at + ms });
  await sleep(ms);
}

export type Corruption = 'rev' | 'runs-string' | 'lease-json' | 'spec';

/**
 * Corrupts one job's keys, as a bad migration or a hand edit would: `rev` not a number, the
 * `runs` hash replaced by a string, a lease entry that is not JSON, a `spec` that is garbage.
 * Then announces a change of the job, as a runtime control would, so every replica re-reads it.
 */
export async function corrupt(ctx: NemesisContext, job: string, what: Corruption): Promise<void> {
  const redis = ctx.cluster.redisClient;
  const base = `{${ctx.cluster.prefix}}`;
  const jobKey = `${base}:job:${job}`;
  const runsKey = `${base}:runs:${job}`;
  if (what === 'rev') await redis.hset(jobKey, 'rev', 'not-a-number');
  else if (what === 'spec') await redis.hset(jobKey, 'spec', 'garbage{');
  else if (what === 'lease-json') await redis.hset(runsKey, '1', 'not json');
  else await redis.multi().del(runsKey).set(runsKey, 'garbage').exec();
  ctx.cluster.history.nemesis('corrupt', { job, detail: what });
  await redis.incr(`${base}:version`);
  await redis.publish(`${base}:events`, JSON.stringify({ t: 'changed', names: [job] }));
}

/** Redis commands per second over `ms`, from INFO's counter, written as an observation. */
export async function measureRedisCommands(ctx: NemesisContext, ms: number, phase: 'before' | 'after'): Promise<number> {
  const processed = async () => Number(/total_commands_processed:(\d+)/.exec(await ctx.cluster.redisClient.info('stats'))![1]);
  const [before, from] = [await processed(), Date.now()];
  await sleep(ms);
  const [after, to] = [await processed(), Date.now()];
  const value = Math.round(((after - before) * 1000) / (to - from));
  ctx.cluster.history.append({ type: 'observe', at: to, what: 'redis-commands-per-second', phase, value });
  return value;
}

/** Matches a claim of a due fire of `job` (EVALSHA or EVAL of claim.lua): its name, then its `kind` argument "due". */
export const claimOf =
  (job: string) =>
  (command: string[]): boolean =>
    command.some((word, i) => word === job && command[i + 1] === 'due');

/** The replica that ran `job` last: normally its preferred replica, which claims at the due instant. */
export function winnerOf(ctx: NemesisContext, job: string): FaultReplica {
  const last = [...ctx.cluster.events.events].reverse().find((event) => event.type === 'start' && event.job === job && ctx.cluster.replicas.get(event.instance)?.alive);
  return ctx.cluster.replica(last?.instance ?? ctx.cluster.live()[0].instanceId);
}
