import type { CheckpointLine, EndLine, HistoryLine, JobLine, LogLine, NemesisLine, ResumeLine, StartLine } from './history';

/**
 * The checks of fenced checkpoints (README, "Checkpoints"), from the history alone: what each
 * checkpointing run found in `ctx.lastCheckpoint` (its `resume` line) against the `ctx.checkpoint`
 * calls the runs before it logged, the nemeses, and the warnings the replicas logged.
 *
 * - Real: a lastCheckpoint is a state some earlier run passed to ctx.checkpoint before this run
 *   started, with that run's fencing token and the time of that call.
 * - Not too far behind: after a run that ended by itself, the next run starts from its last
 *   call; after one cut off (kill -9, SIGSTOP), from at most `maxUpdates` calls behind its last
 *   call before the cut (less a write's round trip), and from no call older than `interval` (plus
 *   slack) before the cut.
 *   Never ahead of what the run before it had logged.
 * - Fenced: once a run B claimed the job while it had a checkpoint (B's own lastCheckpoint is not
 *   null, and the claim raised the fence to B's token), every later run finds either what B found
 *   or a checkpoint written by B's token or a higher one: never one a zombie wrote after B's claim.
 *   Accepted checkpoints' tokens and items never go back.
 * - Refused once: a zombie (SIGSTOPped while a newer run took the job over) that calls
 *   ctx.checkpoint after SIGCONT logs exactly one refusal; no run logs two.
 *
 * Assumes no loss of Redis's state in the scenario (no FLUSHALL, no restart, no clearCheckpoint).
 */
export interface CheckpointCheckOptions {
  /** Fail unless at least this many runs resumed from a run cut off by kill -9 or SIGSTOP. */
  minResumesAfterCut?: number;
  /** Fail unless at least this many zombies tried to checkpoint after SIGCONT, and a later run resumed. */
  minZombies?: number;
  /** Late timers and the write's round trip, on top of `interval`. @default 500 */
  slackMs?: number;
  /**
   * A write started this long before the cut may not have reached Redis: the `maxUpdates` bound
   * counts from the last call this long before it. @default 100
   */
  writeMs?: number;
  /** lastCheckpoint.savedAt may differ from the true time of its call by this much. @default 500 */
  clockToleranceMs?: number;
}

export type CheckpointViolationKind =
  | 'checkpoint-phantom'
  | 'checkpoint-behind'
  | 'checkpoint-ahead'
  | 'checkpoint-fenced'
  | 'checkpoint-backwards'
  | 'checkpoint-refusal'
  | 'checkpoint-untested';

export interface CheckpointViolation {
  kind: CheckpointViolationKind;
  job: string;
  detail: string;
}

export interface CheckpointStats {
  /** Runs of checkpointing jobs with a resume line. */
  resumes: number;
  /** ... of which resumed after a run cut off by kill -9 or SIGSTOP. */
  afterCut: number;
  /** Zombies that called ctx.checkpoint after SIGCONT, with a later run resuming. */
  zombies: number;
  /** Refusal warnings logged. */
  refusals: number;
  /** The largest lag seen after a cut: items behind the cut run's last call before the cut. */
  maxLagAfterCut: number;
}

interface CkRun {
  job: string;
  token: number;
  instance: string;
  start: number;
  end: EndLine | null;
  resume: ResumeLine | null;
  /** Its calls, in order. */
  calls: CheckpointLine[];
}

/** The lower bound on where a run may resume, given the run before it. */
interface Bound {
  lower: number;
  why: string;
  /** The run before was cut off. */
  cut: boolean;
  /** Its last call before the run after it started: never to be passed. */
  lastItem: number;
  /** Its last call before the cut, if cut off. */
  atCut?: number;
}

export function checkCheckpoints(history: HistoryLine[], options: CheckpointCheckOptions = {}): { violations: CheckpointViolation[]; stats: CheckpointStats } {
  const slack = options.slackMs ?? 500;
  const tolerance = options.clockToleranceMs ?? 500;
  const writeMs = options.writeMs ?? 100;
  const violations: CheckpointViolation[] = [];
  const stats: CheckpointStats = { resumes: 0, afterCut: 0, zombies: 0, refusals: 0, maxLagAfterCut: 0 };
  const nemeses = history.filter((line): line is NemesisLine => line.type === 'nemesis').sort((a, b) => a.at - b.at);
  const logs = history.filter((line): line is LogLine => line.type === 'log');
  const configs = new Map<string, { maxUpdates: number; interval: number }>();
  for (const line of history) if (line.type === 'job' && (line as JobLine).checkpoint) configs.set(line.job, (line as JobLine).checkpoint!);

  for (const [job, { maxUpdates, interval }] of configs) {
    const runs = joinCheckpointRuns(history, job);
    const add = (kind: CheckpointViolationKind, detail: string) => violations.push({ kind, job, detail });
    const allCalls = history.filter((line): line is CheckpointLine => line.type === 'checkpoint' && line.job === job);
    const refusalsOf = (token: number) => logs.filter((line) => refusalPattern(job, token).test(line.message));

    for (const run of runs) {
      const refused = refusalsOf(run.token);
      stats.refusals += refused.length;
      if (refused.length > 1) add('checkpoint-refusal', `${who(run)}: the refusal of its checkpoints was logged ${refused.length} times, once expected`);
    }

    const resumed = runs.filter((run) => run.resume !== null);
    stats.resumes += resumed.length;
    for (const run of resumed) {
      const last = run.resume!.last;
      // Real: a call some earlier run made before this run started, with its token and time.
      if (last) {
        if (last.token >= run.token) add('checkpoint-phantom', `${who(run)} found a checkpoint of token ${last.token}, not below its own`);
        if (last.stateToken !== last.token) {
          add('checkpoint-phantom', `${who(run)} found item ${last.item} with fencingToken ${last.token}, but the state was passed by the run of token ${last.stateToken}`);
        }
        const matching = allCalls.filter((call) => call.token === last.stateToken && call.item === last.item && call.at <= run.start);
        if (matching.length === 0) {
          add('checkpoint-phantom', `${who(run)} found item ${last.item} of token ${last.stateToken}, which no run passed to ctx.checkpoint before it started`);
        } else {
          const off = Math.min(...matching.map((call) => Math.abs(last.savedAt - call.at)));
          if (off > tolerance) add('checkpoint-phantom', `${who(run)} found item ${last.item} with savedAt ${off} ms off the time of its call`);
        }
      }

      // Bounds from the run before it.
      const before = runs.filter((other) => other.token < run.token && other.start <= run.start).pop();
      const bound = before ? boundAfter(before, run, nemeses, { maxUpdates, interval, slack, writeMs }) : null;
      if (bound) {
        const item = last?.item ?? 0;
        if (bound.cut) {
          stats.afterCut++;
          stats.maxLagAfterCut = Math.max(stats.maxLagAfterCut, bound.atCut! - item);
        }
        if (item < bound.lower) add('checkpoint-behind', `${who(run)} resumed from item ${last ? item : 'none (null)'}, but ${bound.why}`);
        if (item > bound.lastItem) add('checkpoint-ahead', `${who(run)} resumed from item ${item}, ahead of item ${bound.lastItem}, the last ${who(before!)} had passed to ctx.checkpoint when it started`);
      }

      // Fenced: after B's claim raised the fence, only what B found or writes of B's token or higher.
      for (const b of resumed) {
        if (b.token >= run.token || b.resume!.last === null) continue;
        const found = b.resume!.last;
        if (!last) {
          add('checkpoint-fenced', `${who(run)} found no checkpoint, but ${who(b)} had found item ${found.item} before it`);
          continue;
        }
        const same = last.token === found.token && last.item === found.item && last.savedAt === found.savedAt;
        if (!same && last.token < b.token) {
          add(
            'checkpoint-fenced',
            `${who(run)} resumed from item ${last.item} written by token ${last.token}, written after ${who(b)} claimed the job ` +
              `(which raised the fence to ${b.token}; it had found item ${found.item} of token ${found.token}): a fenced write was accepted`,
          );
        }
        if (last.token < found.token || last.item < found.item) {
          add('checkpoint-backwards', `${who(run)} resumed from item ${last.item} of token ${last.token}, behind item ${found.item} of token ${found.token} that ${who(b)} had found before it`);
        }
      }
    }

    // Zombies: stopped while a newer run (which found a checkpoint) took over, calling ctx.checkpoint after SIGCONT.
    for (const stop of nemeses.filter((line) => line.f === 'stop')) {
      const cont = nemeses.find((line) => line.f === 'cont' && line.instance === stop.instance && line.at >= stop.at);
      if (!cont) continue;
      const zombie = runs.find((run) => run.instance === stop.instance && run.start <= stop.at && (run.end === null || run.end.end >= stop.at));
      if (!zombie) continue;
      const successor = runs.find((run) => run.token > zombie.token && run.start > stop.at && run.start < cont.at && run.resume?.last);
      const attempts = zombie.calls.filter((call) => call.at >= cont.at);
      if (!successor || attempts.length === 0) continue;
      const refused = refusalsOf(zombie.token);
      if (refused.length !== 1) {
        add(
          'checkpoint-refusal',
          `${who(zombie)} called ctx.checkpoint ${attempts.length} time(s) after SIGCONT (items ${attempts[0].item}–${attempts[attempts.length - 1].item}), ` +
            `after ${who(successor)} took the job over, and logged ${refused.length} refusal(s), one expected`,
        );
      }
      if (runs.some((run) => run.token > successor.token && run.resume)) stats.zombies++;
    }
  }

  if (options.minResumesAfterCut !== undefined && stats.afterCut < options.minResumesAfterCut) {
    violations.push({ kind: 'checkpoint-untested', job: '*', detail: `${stats.afterCut} run(s) resumed after a run cut off by kill -9 or SIGSTOP, at least ${options.minResumesAfterCut} expected` });
  }
  if (options.minZombies !== undefined && stats.zombies < options.minZombies) {
    violations.push({ kind: 'checkpoint-untested', job: '*', detail: `${stats.zombies} zombie(s) called ctx.checkpoint after SIGCONT with a later run to see the outcome, at least ${options.minZombies} expected` });
  }
  return { violations, stats };
}

/** The library's refusal warning for a run (lib/checkpoint/run-checkpoints.ts). */
export function refusalPattern(job: string, token: number): RegExp {
  return new RegExp(`^Job "${job.replace(/\W/g, '\\$&')}": a checkpoint of the run with fencing token ${token} was refused`);
}

/**
 * Where the run after `before` may resume. After a run that ended by itself, exactly at its last
 * call (its checkpoints are flushed before its end is reported). After one cut off (kill -9 or
 * SIGSTOP at X): a flush starts at every `maxUpdates`-th call, and `interval` after the first call
 * not flushed, so no further behind than `maxUpdates` calls before its last call at X − writeMs (a
 * write started after that may not have reached Redis), nor than its last call at X − interval − slack. Otherwise (aborted, e.g. a lost lease): no lower bound.
 */
function boundAfter(before: CkRun, run: CkRun, nemeses: NemesisLine[], limits: { maxUpdates: number; interval: number; slack: number; writeMs: number }): Bound | null {
  const base = before.resume ? (before.resume.last?.item ?? 0) : null;
  const calls = before.calls.filter((call) => call.at <= run.start);
  const lastItem = calls.length > 0 ? calls[calls.length - 1].item : base;
  if (lastItem === null) return null;
  if (before.end && before.end.end <= run.start && before.end.aborted === null) {
    return { lower: lastItem, why: `${who(before)} ended by itself at item ${lastItem}`, cut: false, lastItem };
  }
  const cut = nemeses.find(
    (line) => (line.f === 'kill' || line.f === 'stop') && line.instance === before.instance && line.at >= before.start && line.at <= run.start && (!before.end || before.end.end >= line.at),
  );
  if (!cut) return { lower: -Infinity, why: '', cut: false, lastItem };
  const upTo = (time: number) => [...calls].reverse().find((call) => call.at <= time)?.item ?? base ?? -Infinity;
  const atCut = upTo(cut.at);
  const atWrite = upTo(cut.at - limits.writeMs);
  const byCount = atWrite - limits.maxUpdates;
  const byTime = upTo(cut.at - limits.interval - limits.slack);
  const lower = Math.max(base ?? -Infinity, byCount, byTime);
  const why =
    byTime > byCount
      ? `${who(before)} had passed item ${byTime} more than interval (${limits.interval} ms) + ${limits.slack} ms before its ${cut.f} at item ${atCut}: it should have been written`
      : `${who(before)} had reached item ${atWrite} ${limits.writeMs} ms before its ${cut.f} (item ${atCut} at it): more than maxUpdates (${limits.maxUpdates}) behind`;
  return { lower, why, cut: true, lastItem, atCut };
}

function joinCheckpointRuns(history: HistoryLine[], job: string): CkRun[] {
  const runs = new Map<number, CkRun>();
  for (const line of history) {
    if (line.type === 'start' && line.job === job) {
      const start = line as StartLine;
      runs.set(start.token, { job, token: start.token, instance: start.instance, start: start.start, end: null, resume: null, calls: [] });
    }
  }
  for (const line of history) {
    if (!('job' in line) || line.job !== job || !('token' in line)) continue;
    const run = runs.get(line.token);
    if (!run) continue;
    if (line.type === 'end') run.end = line;
    else if (line.type === 'resume') run.resume = line;
    else if (line.type === 'checkpoint') run.calls.push(line);
  }
  for (const run of runs.values()) run.calls.sort((a, b) => a.at - b.at);
  return [...runs.values()].sort((a, b) => a.token - b.token);
}

function who(run: CkRun): string {
  return `${run.instance}#${run.token}`;
}
