import type { HistoryLine, NemesisLine, ScenarioLine, TaskCreatedLine, TaskEndLine, TaskStartLine } from './history';
import { groupBy, iso } from './check-helpers';

/**
 * The checks of dispatched tasks with retries (README, "Tasks across the cluster", "Retries",
 * "Recovery of runs whose replica died", "Hand-back at shutdown"), from the history alone: the
 * creator's `task-created` lines and each attempt's `task-start` / `task-end` lines.
 *
 * - Exactly once: every task created has exactly one attempt that ended `success`, but for a
 *   success whose replica was killed within `finishWindowMs` after it (before its end could
 *   reach Redis): the task may then succeed once more.
 * - No overlap: an attempt starts only after the one before it ended, unless the one before was
 *   cut (its replica killed -9 or stopped after it started and before the next began): that one
 *   is a crash, and the next attempt its recovery. A SIGTERM is no crash: a handed-back attempt
 *   must have returned before the next one starts.
 * - Attempts and tokens increase, in the order the attempts started (an attempt number may be
 *   skipped: an attempt claimed by a replica killed before its handler started).
 * - In time: every task's success comes within `drainBoundMs` after the nemesis stopped
 *   (`faults-end`, or the scenario's end).
 */
export interface TaskCheckOptions {
  drainBoundMs: number;
  /**
   * A second success is allowed (counted apart) when the replica of the first was killed -9 or
   * stopped within this long after that attempt's handler returned: its end goes to the records,
   * then to Redis, and a kill in between leaves the lease to expire and the task to be recovered
   * (delivery is at least once). @default 0
   */
  finishWindowMs?: number;
  /** Fail unless at least this many attempts were cut (no end, or aborted) and their task then succeeded. */
  minRecovered?: number;
  /** Fail unless at least this many attempts were handed back at shutdown (ended `aborted:shutdown`). */
  minHandedBack?: number;
}

export type TaskViolationKind = 'task-lost' | 'task-duplicate' | 'task-overlap' | 'task-attempts' | 'task-fencing' | 'task-late' | 'task-untested';

export interface TaskViolation {
  kind: TaskViolationKind;
  job: string;
  detail: string;
}

export interface TaskStats {
  tasks: number;
  attempts: number;
  /** Attempts after the first. */
  retries: number;
  /** Attempts cut by a fault (no end line, or aborted) whose task later succeeded. */
  recovered: number;
  /** Attempts aborted by their replica's shutdown (SIGTERM) and handed back. */
  handedBack: number;
  /** Second successes allowed because the first one's replica was killed before its end reached Redis. */
  crashDuplicates: number;
  /** Overlaps allowed because the earlier attempt's replica was killed or stopped. */
  crashOverlaps: number;
  maxAttempt: number;
  /** The last success after the nemesis stopped (ms; negative if all were done before). */
  drainMs: number;
}

interface Attempt extends TaskStartLine {
  end: TaskEndLine | null;
}

export function checkTasks(history: HistoryLine[], options: TaskCheckOptions): { violations: TaskViolation[]; stats: TaskStats } {
  const nemeses = history.filter((line): line is NemesisLine => line.type === 'nemesis').sort((a, b) => a.at - b.at);
  const scenarioEnd = history.find((line): line is ScenarioLine => line.type === 'scenario' && line.phase === 'end')?.at ?? Infinity;
  const faultsEnd = nemeses.find((line) => line.f === 'faults-end')?.at ?? scenarioEnd;
  const created = new Set(history.filter((line): line is TaskCreatedLine => line.type === 'task-created').map((line) => line.task));
  const ends = new Map<string, TaskEndLine>();
  for (const line of history) if (line.type === 'task-end') ends.set(attemptKey(line), line);
  const attempts: Attempt[] = history
    .filter((line): line is TaskStartLine => line.type === 'task-start')
    .map((start) => ({ ...start, end: ends.get(attemptKey(start)) ?? null }));
  const byTask = groupBy(attempts, (attempt) => attempt.task);
  const violations: TaskViolation[] = [];
  const stats: TaskStats = { tasks: created.size, attempts: attempts.length, retries: 0, recovered: 0, handedBack: 0, crashDuplicates: 0, crashOverlaps: 0, maxAttempt: 0, drainMs: -Infinity };
  const job = attempts[0]?.job ?? '?';

  for (const task of new Set([...created, ...byTask.keys()])) {
    const own = (byTask.get(task) ?? []).sort((a, b) => a.at - b.at || a.attempt - b.attempt);
    const successes = own.filter((attempt) => attempt.end?.outcome === 'success');
    if (successes.length === 0) {
      const tried = own.map((attempt) => `${attempt.attempt}@${attempt.instance}: ${attempt.end?.outcome ?? 'no end'}`).join(', ');
      violations.push({ kind: 'task-lost', job, detail: `task ${task} never succeeded${own.length ? ` (attempts ${tried})` : ' (no attempt started)'}` });
    } else if (successes.length > 1) {
      // Each success but the last whose replica was killed right after it: its end never reached Redis.
      const cutAfter = successes.slice(0, -1).filter((success) => nemeses.some((line) => (line.f === 'kill' || line.f === 'stop') && line.instance === success.instance && line.at >= success.end!.at && line.at <= success.end!.at + (options.finishWindowMs ?? 0)));
      if (cutAfter.length === successes.length - 1) stats.crashDuplicates += cutAfter.length;
      else violations.push({ kind: 'task-duplicate', job, detail: `task ${task} succeeded ${successes.length} times: ${successes.map((a) => `attempt ${a.attempt} on ${a.instance} (token ${a.token})`).join(', ')}` });
    }
    for (const success of successes) {
      stats.drainMs = Math.max(stats.drainMs, success.end!.at - faultsEnd);
      if (success.end!.at > faultsEnd + options.drainBoundMs) {
        violations.push({ kind: 'task-late', job, detail: `task ${task} succeeded ${success.end!.at - faultsEnd} ms after the faults stopped, above the bound of ${options.drainBoundMs} ms` });
      }
    }
    for (let i = 0; i < own.length; i++) {
      const attempt = own[i];
      stats.maxAttempt = Math.max(stats.maxAttempt, attempt.attempt);
      if (attempt.attempt > 1) stats.retries++;
      const cut = attempt.end === null || attempt.end.outcome.startsWith('aborted');
      if (cut && successes.some((success) => success.at > attempt.at)) stats.recovered++;
      if (attempt.end?.outcome === 'aborted:shutdown') stats.handedBack++;
      if (i === 0) continue;
      const before = own[i - 1];
      if (attempt.attempt <= before.attempt) {
        violations.push({ kind: 'task-attempts', job, detail: `task ${task}: attempt ${attempt.attempt} (${attempt.instance}) started after attempt ${before.attempt} (${before.instance})` });
      }
      if (attempt.token <= before.token) {
        violations.push({ kind: 'task-fencing', job, detail: `task ${task}: attempt ${attempt.attempt} has token ${attempt.token}, not above ${before.token} of attempt ${before.attempt}` });
      }
      // Each attempt against every earlier one still going when it started.
      for (const earlier of own.slice(0, i)) {
        if (earlier.end !== null && earlier.end.at <= attempt.at) continue;
        const crash = nemeses.find((line) => (line.f === 'kill' || line.f === 'stop') && line.instance === earlier.instance && line.at >= earlier.at && line.at <= attempt.at);
        if (crash) {
          stats.crashOverlaps++;
          continue;
        }
        const until = earlier.end ? `until ${iso(earlier.end.at)} (${earlier.end.outcome})` : 'and never ended';
        violations.push({
          kind: 'task-overlap',
          job,
          detail: `task ${task}: attempt ${attempt.attempt} started on ${attempt.instance} at ${iso(attempt.at)} while attempt ${earlier.attempt} ran on ${earlier.instance} ${until}, its replica neither killed nor stopped`,
        });
      }
    }
  }
  if (options.minHandedBack !== undefined && stats.handedBack < options.minHandedBack) {
    violations.push({ kind: 'task-untested', job, detail: `${stats.handedBack} attempt(s) handed back at shutdown, fewer than ${options.minHandedBack}` });
  }
  if (options.minRecovered !== undefined && stats.recovered < options.minRecovered) {
    violations.push({ kind: 'task-untested', job, detail: `${stats.recovered} attempt(s) cut by a fault and then recovered, fewer than ${options.minRecovered}` });
  }
  return { violations, stats };
}

const attemptKey = (line: { task: number; token: number; instance: string }) => `${line.task}|${line.token}|${line.instance}`;
