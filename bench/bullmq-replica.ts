/**
 * One BullMQ process of the bench, run as its own Node process by run.ts (bench/README.md,
 * "BullMQ"): a Queue that upserts JOB_COUNT job schedulers `job-0 .. job-N-1`, each
 * `every: EVERY_MS`, and a Worker that runs them. Every process upserts the same schedulers, as
 * every replica of an app would at startup; an upsert of an existing scheduler keeps its next due
 * time, so the first process's schedule holds. It speaks the same IPC protocol as replica.ts.
 */
import { Job, Queue, Worker } from 'bullmq';
import { record, send, startReporting, work } from './child-reporting';

const jobCount = Number(process.env.JOB_COUNT ?? 0);
const everyMs = Number(process.env.EVERY_MS ?? 1_000);
const instanceId = process.env.INSTANCE_ID ?? `bullmq-${process.pid}`;
/** The queue is named after the configuration's fresh key prefix; its keys are under BullMQ's default `bull:`. */
const queueName = process.env.KEY_PREFIX ?? 'bench';

/**
 * BullMQ names each fire of a job scheduler `repeat:<scheduler id>:<due time, epoch ms>`
 * (addJobScheduler / updateJobScheduler), so the id holds the due time exactly. It equals
 * `timestamp + opts.delay` unless BullMQ clamped a past due time's delay to 0; `opts.prevMillis`
 * is not set for `every` schedulers, whose next time the Lua scripts compute.
 */
function dueTime(job: Job): number {
  return Number(job.id!.slice(job.id!.lastIndexOf(':') + 1));
}

async function handle(job: Job): Promise<void> {
  const startedAt = Date.now(); // taken first: lag is measured to the handler's entry
  record({
    name: job.name,
    scheduledAt: dueTime(job),
    startedAt,
    // When this worker took the job (moveToActive): the part of the lag before dispatch.
    claimedAt: job.processedOn!,
    instanceId,
  });
  await work();
}

/**
 * The first due time is one period from now on a whole second, so all jobs fall due together each
 * period, as ours do (every replica registers them at once, first due one period later). Without
 * `startDate` an `every` scheduler runs at once and then on the phase of its own upsert.
 */
async function upsertSchedulers(queue: Queue): Promise<void> {
  const startDate = Math.ceil(Date.now() / 1000) * 1000 + everyMs;
  const names = Array.from({ length: jobCount }, (_, i) => `job-${i}`);
  await Promise.all(names.map((name) => queue.upsertJobScheduler(name, { every: everyMs, startDate }, { name })));
}

async function main(): Promise<void> {
  startReporting();
  const connection = { url: process.env.REDIS_URL };
  const queue = new Queue(queueName, { connection });
  // BullMQ's defaults (lockDuration 30 s, stalledInterval 30 s, maxStalledCount 1, completed jobs
  // kept) except concurrency: one worker may take every job that falls due at once, as one of our
  // replicas may, so a burst is not queued behind the default concurrency of 1.
  const worker = new Worker(queueName, handle, { connection, concurrency: Math.max(1, jobCount) });
  worker.on('error', (error) => console.error(`worker: ${error.message}`));
  await Promise.all([worker.waitUntilReady(), upsertSchedulers(queue)]);
  // The parent disconnects to stop the process, or it died: either way, shut down.
  process.on('disconnect', () => void Promise.allSettled([worker.close(), queue.close()]).finally(() => process.exit(0)));
  send({ type: 'ready' });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
