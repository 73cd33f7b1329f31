/**
 * What the task-dispatch bench's processes (`dispatch-replica.ts`, ours, and
 * `dispatch-bullmq-replica.ts`) tell the parent, `dispatch.ts`: each handler start and end, with
 * this machine's clock (every process runs here), batched so IPC does not load the processes it
 * measures; and the commands the parent sends them.
 */

export interface TaskStart {
  /** The task's id (ours: `ctx.taskId`; BullMQ: `job.id`). */
  id: string;
  /** 1 for the first attempt (ours: `ctx.attempt`; BullMQ: `job.attemptsStarted`). */
  attempt: number;
  /** Date.now() just before the task was created or added, carried in its parameters / data. */
  createdAt: number;
  /** Date.now() as the handler's first statement. */
  at: number;
  instanceId: string;
}

export interface TaskEnd {
  id: string;
  at: number;
  instanceId: string;
  /** Ours: why `ctx.signal` aborted the hold (e.g. `shutdown`); null when the handler ran to its end. */
  aborted: string | null;
}

export type DispatchChildMessage =
  | { type: 'ready' }
  | { type: 'events'; starts: TaskStart[]; ends: TaskEnd[] }
  | { type: 'reply'; id: number; result?: unknown; error?: string };

/** `create`: `count` tasks whose handler holds `holdMs` (0: returns at once). `members`: how many live members this replica sees (ours). */
export type DispatchCommand = { id: number; method: 'create'; count: number; holdMs: number } | { id: number; method: 'members' };

/** What a `create` answers: when the first and the last task were handed to the library. */
export interface Created {
  firstAt: number;
  lastAt: number;
  count: number;
}

export function send(message: DispatchChildMessage): void {
  if (process.connected) process.send!(message);
}

const starts: TaskStart[] = [];
const ends: TaskEnd[] = [];

export function flush(): void {
  if (starts.length > 0 || ends.length > 0) send({ type: 'events', starts: starts.splice(0), ends: ends.splice(0) });
}

/** Long-held tasks (failover, hand-back) are sent at once: the parent kills their process as soon as it knows they started. */
export function recordStart(start: TaskStart, atOnce: boolean): void {
  starts.push(start);
  if (atOnce) flush();
}

export function recordEnd(end: TaskEnd, atOnce: boolean): void {
  ends.push(end);
  if (atOnce) flush();
}

/** Batches go out every 50 ms; answers `command` messages with `reply`. */
export function startReporting(commands: (command: DispatchCommand) => Promise<unknown>): void {
  setInterval(flush, 50).unref();
  process.on('message', (command: DispatchCommand) => {
    commands(command).then(
      (result) => send({ type: 'reply', id: command.id, result }),
      (error: Error) => send({ type: 'reply', id: command.id, error: error.message }),
    );
  });
}

/** Waits `ms`, or until `signal` aborts; the abort's kind (ours: `{ kind }`), or null. */
export function hold(ms: number, signal?: AbortSignal): Promise<string | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve(String((signal.reason as { kind?: string } | undefined)?.kind ?? 'aborted'));
    });
  });
}
