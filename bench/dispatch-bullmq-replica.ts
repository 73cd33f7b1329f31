/**
 * One BullMQ process of the task-dispatch bench (`dispatch.ts`): a Queue and a Worker
 * (`concurrency` 10, a no-op processor unless the job's data asks it to hold), on the bench's
 * redis-server. The parent asks one process to add the jobs with `Queue.addBulk`. SIGTERM closes
 * the worker (`worker.close()`: BullMQ's graceful shutdown, which waits for the active jobs) and
 * then exits. LOCK_DURATION_MS and STALLED_INTERVAL_MS set the stalled-job detection.
 */
import { Job, Queue, Worker } from 'bullmq';
import { DispatchCommand, hold, recordEnd, recordStart, send, startReporting } from './dispatch-events';

const instanceId = process.env.INSTANCE_ID ?? `bullmq-${process.pid}`;
const queueName = process.env.KEY_PREFIX ?? 'bench-dispatch';

interface JobData {
  createdAt: number;
  holdMs: number;
}

async function processor(job: Job<JobData>): Promise<void> {
  const at = Date.now(); // taken first: the lag is measured to the handler's entry
  const { createdAt, holdMs } = job.data;
  recordStart({ id: job.id!, attempt: job.attemptsStarted, createdAt, at, instanceId }, holdMs > 0);
  if (holdMs > 0) await hold(holdMs);
  recordEnd({ id: job.id!, at: Date.now(), instanceId, aborted: null }, holdMs > 0);
}

async function main(): Promise<void> {
  const connection = { url: process.env.REDIS_URL };
  const queue = new Queue<JobData>(queueName, { connection });
  const worker = new Worker<JobData>(queueName, processor, {
    connection,
    concurrency: 10,
    // BullMQ's defaults (30 s each) unless the part sets them; maxStalledCount stays 1 (one recovery).
    ...(process.env.LOCK_DURATION_MS ? { lockDuration: Number(process.env.LOCK_DURATION_MS) } : {}),
    ...(process.env.STALLED_INTERVAL_MS ? { stalledInterval: Number(process.env.STALLED_INTERVAL_MS) } : {}),
  });
  worker.on('error', (error) => console.error(`worker: ${error.message}`));
  await worker.waitUntilReady();
  startReporting(async (command: DispatchCommand) => {
    if (command.method !== 'create') throw new Error(`${command.method} is ours only`);
    const createdAt = Date.now();
    await queue.addBulk(Array.from({ length: command.count }, (_, i) => ({ name: 'bench.task', data: { createdAt, holdMs: command.holdMs }, opts: { jobId: `t${i}` } })));
    return { firstAt: createdAt, lastAt: Date.now(), count: command.count };
  });
  const close = () => Promise.allSettled([worker.close(), queue.close()]).finally(() => process.exit(0));
  process.once('SIGTERM', () => void close());
  process.on('disconnect', () => void close());
  send({ type: 'ready' });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
