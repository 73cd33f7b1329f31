import { appendFileSync, readFileSync } from 'node:fs';

/**
 * The history of one scenario: an append-only file of JSON lines, written by the replicas (one
 * `start` line when a handler starts, one `end` line when it ends; a replica killed mid-run
 * leaves a start without an end) and by the harness (what it declared and what its nemesis did).
 * The checker reads nothing else: not Redis, not the replicas' memory (Jepsen's model).
 * Times are epoch ms on the machine's true clock (a replica under faketime subtracts its skew).
 */
export type HistoryLine =
  | ScenarioLine
  | JobLine
  | StartLine
  | EndLine
  | NemesisLine
  | ObserveLine
  | ResumeLine
  | CheckpointLine
  | LogLine
  | TickLine
  | TickEndLine
  | TaskCreatedLine
  | TaskStartLine
  | TaskEndLine;

export interface ScenarioLine {
  type: 'scenario';
  phase: 'begin' | 'end';
  at: number;
  name: string;
  seed: number;
  lockTtl: number;
  /** The replicas' `sessionTtl`, when the scenario sets it (continuous jobs' failover bound). */
  sessionTtl?: number;
}

/**
 * A job's schedule from `at` on: declared when the replicas start, again when a deploy changes it.
 * A continuous job (`continuous`) or an on-demand one (`onDemand`, run by tasks) has no due times:
 * the lost-fire checks skip it.
 */
export interface JobLine {
  type: 'job';
  at: number;
  job: string;
  every: number;
  /** A continuous job: at most `max` runs at once. */
  continuous?: { max: number };
  /** An on-demand job, run only by tasks (`TaskManager.create`). */
  onDemand?: boolean;
  /** A checkpointing job's flush options, as the library resolves them (its checks' bounds). */
  checkpoint?: { maxUpdates: number; interval: number };
}

export interface StartLine {
  type: 'start';
  job: string;
  /** ctx.scheduledAt: the due time (or request time) the run serves, on Redis's clock. */
  due: number;
  token: number;
  instance: string;
  trigger: string;
  /** True time the handler started. */
  start: number;
  /** ctx.startedAt, as the library reported it. */
  ctxStart: number;
  /** The replica's own clock at the start (differs from `start` under faketime). */
  localStart: number;
}

export interface EndLine {
  type: 'end';
  job: string;
  due: number;
  token: number;
  instance: string;
  end: number;
  /** The abort reason's kind, or null for a run that ended by itself. */
  aborted: string | null;
}

export type NemesisKind =
  | 'kill'
  | 'stop'
  | 'cont'
  | 'term'
  | 'exit'
  | 'replica-start'
  | 'redis-down'
  | 'redis-up'
  | 'flushall'
  | 'client-pause'
  | 'corrupt'
  | 'skew'
  | 'reply-dropped'
  | 'reply-delayed'
  | 'blackhole'
  | 'heal'
  /** The nemesis has stopped striking: what is still undone must finish within the scenario's bound. */
  | 'faults-end';

export interface NemesisLine {
  type: 'nemesis';
  f: NemesisKind;
  at: number;
  /** The end of a fault with a duration (a CLIENT PAUSE, a delayed reply). */
  until?: number;
  instance?: string;
  job?: string;
  detail?: string;
}

/** A measurement the harness took (Redis commands per second over a few seconds). */
export interface ObserveLine {
  type: 'observe';
  at: number;
  what: 'redis-commands-per-second';
  /** Measured before the fault (the baseline) or after it. */
  phase: 'before' | 'after';
  value: number;
}

/** What a checkpointing run found in `ctx.lastCheckpoint`, written right after its start line. */
export interface ResumeLine {
  type: 'resume';
  job: string;
  token: number;
  instance: string;
  at: number;
  last: {
    /** state.item */
    item: number;
    /** state.token: the token of the run that passed the state, as that run saw it. */
    stateToken: number;
    /** lastCheckpoint.fencingToken: the writer's token, as the library reports it. */
    token: number;
    /** lastCheckpoint.savedAt, epoch ms (Redis's clock). */
    savedAt: number;
  } | null;
}

/** One `ctx.checkpoint({ item, token })` call, written just before it is made. */
export interface CheckpointLine {
  type: 'checkpoint';
  job: string;
  token: number;
  instance: string;
  item: number;
  at: number;
  /** Made in the run's abort event (the handler saving its progress as it stops). */
  onAbort?: boolean;
}

/** A warning or error the library logged on a replica. */
export interface LogLine {
  type: 'log';
  level: 'warn' | 'error';
  at: number;
  instance: string;
  context: string | null;
  message: string;
}

/**
 * One iteration of a continuous job's loop, written after the handler checked `ctx.signal.aborted`
 * (so a run that knows it lost its slot writes no more ticks).
 */
export interface TickLine {
  type: 'tick';
  job: string;
  token: number;
  instance: string;
  /** True time of the tick. */
  at: number;
  /** ctx.startedAt: when the coordinator issued the slot lease (its clock, at the token's issue). */
  acquiredAt: number;
  /** 0 for the run's first tick. */
  seq: number;
}

/** A continuous run's handler returned (its signal aborted): no more ticks of this token. */
export interface TickEndLine {
  type: 'tick-end';
  job: string;
  token: number;
  instance: string;
  at: number;
  aborted: string | null;
}

/** A task `TaskManager.create` recorded (written by the creating replica once the call returned). */
export interface TaskCreatedLine {
  type: 'task-created';
  task: number;
  instance: string;
  at: number;
}

/** One attempt of a task, as its handler saw it. */
interface TaskAttemptLine {
  job: string;
  task: number;
  attempt: number;
  token: number;
  instance: string;
  at: number;
}

/** An attempt of a task started its handler. */
export interface TaskStartLine extends TaskAttemptLine {
  type: 'task-start';
}

/** An attempt of a task ended: `success`, `error` (the handler threw: a planted failure), or `aborted:<kind>`. */
export interface TaskEndLine extends TaskAttemptLine {
  type: 'task-end';
  outcome: string;
}

/** Appends lines for the harness's own events (the replicas write theirs directly). */
export class HistoryWriter {
  constructor(readonly file: string) {}

  append(line: HistoryLine): void {
    appendFileSync(this.file, `${JSON.stringify(line)}\n`);
  }

  nemesis(f: NemesisKind, details: Omit<NemesisLine, 'type' | 'f' | 'at'> & { at?: number } = {}): void {
    this.append({ type: 'nemesis', f, at: Date.now(), ...details });
  }
}

/** Reads a history; a torn last line (a writer killed mid-write) is ignored. */
export function readHistory(file: string): HistoryLine[] {
  const lines: HistoryLine[] = [];
  for (const text of readFileSync(file, 'utf8').split('\n')) {
    if (!text.trim()) continue;
    try {
      lines.push(JSON.parse(text) as HistoryLine);
    } catch {
      // A line cut by kill -9 in the middle of its write: it never completed.
    }
  }
  return lines;
}
