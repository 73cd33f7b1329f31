/**
 * Which mechanism task dispatch is built on (ARCHITECTURE, "Task dispatch"): the per-job pending
 * trigger sets with the claim script, as the library does it, against a Redis Stream with a
 * consumer group (XADD, XREADGROUP, XACK), the way BullMQ-like queues hand work out. Both put N
 * tasks of one job and take every one of them with one consumer, in batches of 10 (a replica's
 * free slots). Not the whole path (no handler, no records): the Redis cost of putting and taking.
 *
 *   npx ts-node --transpile-only bench/dispatch-mechanism.ts [N]
 */
import Redis from 'ioredis';
import { RedisCoordinator } from '../lib/coordination/redis/redis.coordinator';
import type { JobRegistration } from '../lib/coordination/coordinator.interface';

const N = Number(process.argv[2] ?? 5_000);
const URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const BATCH = 10;
const TTL = 30_000;

async function sortedSets(): Promise<{ put: number; take: number }> {
  const prefix = `bench-dispatch-${process.pid}-z`;
  const coordinator = new RedisCoordinator(URL, prefix);
  await coordinator.connect();
  await new Promise((resolve) => setTimeout(resolve, 200));
  const definition = { spec: null, overlap: 'skip' as const, paused: false };
  const job: JobRegistration = { name: 'fan', definition, definitionHash: JSON.stringify(definition), first: null };
  await coordinator.register([job], 'boot', 'bench');
  const tasks = Array.from({ length: N }, (_, i) => ({ name: 'fan', taskId: i + 1 }));
  let started = performance.now();
  await coordinator.dispatchTasks(tasks);
  const put = performance.now() - started;
  started = performance.now();
  for (let i = 0; i < N; i += BATCH) {
    const requests = tasks.slice(i, i + BATCH).map((task) => ({ name: 'fan', rev: 1, next: null, member: `fan\nEVENT\ntask:${task.taskId}`, concurrency: 1_000_000 }));
    const results = await coordinator.claim(requests, 'bench', TTL);
    // The run ends: its lease is released (the finish a replica sends).
    await coordinator.finish(results.map((result) => ({ name: 'fan', fencingToken: (result as { fencingToken: number }).fencingToken, status: 'success', error: null })));
  }
  const take = performance.now() - started;
  await cleanup(prefix);
  await coordinator.close();
  return { put, take };
}

async function streams(): Promise<{ put: number; take: number }> {
  const redis = new Redis(URL);
  const key = `bench-dispatch-${process.pid}-s`;
  await redis.xgroup('CREATE', key, 'workers', '$', 'MKSTREAM');
  let started = performance.now();
  for (let i = 0; i < N; i += 500) {
    const pipeline = redis.pipeline();
    for (let t = i; t < Math.min(N, i + 500); t++) pipeline.xadd(key, '*', 'job', 'fan', 'task', String(t + 1));
    await pipeline.exec();
  }
  const put = performance.now() - started;
  started = performance.now();
  for (let taken = 0; taken < N; ) {
    const reply = (await redis.xreadgroup('GROUP', 'workers', 'bench', 'COUNT', BATCH, 'STREAMS', key, '>')) as [string, [string, string[]][]][] | null;
    const ids = reply?.[0][1].map(([id]) => id) ?? [];
    // A lease of its own would still be needed for fencing and stop; the ack is the finish.
    await redis.xack(key, 'workers', ...ids);
    taken += ids.length;
  }
  const take = performance.now() - started;
  await redis.del(key);
  redis.disconnect();
  return { put, take };
}

async function cleanup(prefix: string): Promise<void> {
  const redis = new Redis(URL);
  const keys = await redis.keys(`{${prefix}}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
}

async function main(): Promise<void> {
  // One warm-up each, then the measured runs.
  await sortedSets();
  await streams();
  const z = await sortedSets();
  const s = await streams();
  const row = (name: string, r: { put: number; take: number }) =>
    `| ${name} | ${r.put.toFixed(0)} ms (${((r.put * 1000) / N).toFixed(1)} µs/task) | ${r.take.toFixed(0)} ms (${((r.take * 1000) / N).toFixed(1)} µs/task) |`;
  console.log(`${N} tasks of one job, taken ${BATCH} at a time by one consumer\n`);
  console.log('| mechanism | put | take (claim + release) |\n| --- | --- | --- |');
  console.log(row('pending triggers + claim.lua (used)', z));
  console.log(row('Redis Stream + consumer group', s));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
