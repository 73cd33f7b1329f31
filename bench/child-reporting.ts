/**
 * What every process the bench starts (our replicas, BullMQ's workers, the poller, the
 * @nestjs/schedule app) shares: runs are batched to the parent, the event-loop delay is measured
 * the same way, and handlers do the same work.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { LoopDelay, RunRecord } from './stats';

export type ReplicaMessage = { type: 'ready'; bootMs?: number } | { type: 'runs'; runs: RunRecord[] } | { type: 'loop'; loop: LoopDelay };
export type ParentMessage = { type: 'measure' } | { type: 'report' };

/** Runs wait here and go to the parent every 100 ms: one IPC message per run would load 1,000-job runs. */
export const unsent: RunRecord[] = [];
const FLUSH_MS = 100;

/**
 * The histogram records the time between its timer's ticks, so an idle loop reads as the
 * resolution itself: the delay is what exceeds it (as @fastify/under-pressure computes it).
 */
const LOOP_RESOLUTION_MS = 10;
const delayMs = (nanoseconds: number) => Math.max(0, nanoseconds / 1e6 - LOOP_RESOLUTION_MS);

export function send(message: ReplicaMessage): void {
  if (process.connected) process.send!(message);
}

export function flush(): void {
  if (unsent.length > 0) send({ type: 'runs', runs: unsent.splice(0) });
}

/** Failover configuration only: send each run at once, so a process killed right after the start has reported it. */
const reportAtOnce = process.env.REPORT_AT_ONCE === '1';

/** Notes a run; call it as the handler's first statement, with `startedAt` taken before anything else. */
export function record(run: RunRecord): void {
  unsent.push(run);
  if (reportAtOnce) flush();
}

/** CPU each handler burns synchronously, like a handler doing synchronous work: configuration (c). */
const busyMs = Number(process.env.BUSY_MS ?? 0);
/** Failover configuration only: the handler then waits this long (asynchronously) before it returns. */
const holdMs = Number(process.env.HOLD_MS ?? 0);

/** The handler's work after `record`: the same in every system, so their figures compare. */
export function work(): void | Promise<void> {
  if (busyMs > 0) {
    const end = performance.now() + busyMs;
    while (performance.now() < end);
  }
  if (holdMs > 0) return new Promise((resolve) => setTimeout(resolve, holdMs));
}

/**
 * Starts batching runs and measuring the event loop, and answers the parent: `measure` opens the
 * measured window (the figures cover it only), `report` sends the runs left and the loop figures.
 */
export function startReporting(): void {
  const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loop.enable();
  setInterval(flush, FLUSH_MS).unref();
  process.on('message', (message: ParentMessage) => {
    if (message.type === 'measure') {
      loop.reset();
    } else if (message.type === 'report') {
      flush(); // IPC keeps order: the parent has every run before it gets the loop figures
      send({ type: 'loop', loop: { p99Ms: delayMs(loop.percentile(99)), maxMs: delayMs(loop.max), meanMs: delayMs(loop.mean) } });
    }
  });
}
