/**
 * What every process the bench starts (our replicas, the poller, the @nestjs/schedule app)
 * shares: runs are batched to the parent, and the event-loop delay is measured the same way.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
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
