import { checkHistory } from './checker';
import type { HistoryLine, NemesisLine, TaskEndLine, TaskStartLine } from './history';
import { checkTasks, TaskCheckOptions } from './task-checker';

/**
 * The task checker must catch what tasks-kill is for: a task lost, a task that succeeded twice,
 * attempts that overlap without a crash, attempts or tokens that go back, a task done too late.
 */
describe('task checker', () => {
  const T0 = 1_800_000_000_000;
  const begin: HistoryLine = { type: 'scenario', phase: 'begin', at: T0, name: 'made-up', seed: 1, lockTtl: 2_000 };
  const end: HistoryLine = { type: 'scenario', phase: 'end', at: T0 + 20_000, name: 'made-up', seed: 1, lockTtl: 2_000 };
  const nemesis = (f: NemesisLine['f'], at: number, instance?: string): NemesisLine => ({ type: 'nemesis', f, at, ...(instance && { instance }) });
  const created = (task: number): HistoryLine => ({ type: 'task-created', task, instance: 'r1', at: T0 + task });

  function attempt(task: number, n: number, instance: string, at: number, ms: number | null, outcome = 'success'): HistoryLine[] {
    const start: TaskStartLine = { type: 'task-start', job: 'work', task, attempt: n, token: at, instance, at };
    const ended: TaskEndLine[] = ms === null ? [] : [{ type: 'task-end', job: 'work', task, attempt: n, token: at, instance, at: at + ms, outcome }];
    return [start, ...ended];
  }
  /** Tasks 1–3 each succeed at once; task 4 fails its attempt 1 and succeeds in attempt 2; task 5's attempt 1 is killed and recovered. */
  function healthy(): HistoryLine[] {
    return [
      ...[1, 2, 3, 4, 5].map(created),
      ...attempt(1, 1, 'r2', T0 + 100, 300),
      ...attempt(2, 1, 'r3', T0 + 120, 300),
      ...attempt(3, 1, 'r1', T0 + 140, 300),
      ...attempt(4, 1, 'r2', T0 + 500, 200, 'error'),
      ...attempt(4, 2, 'r3', T0 + 800, 200),
      ...attempt(5, 1, 'r4', T0 + 600, null),
      nemesis('kill', T0 + 700, 'r4'),
      ...attempt(5, 2, 'r2', T0 + 2_800, 200),
      nemesis('faults-end', T0 + 5_000),
    ];
  }
  const check = (history: HistoryLine[], options: Partial<TaskCheckOptions> = {}) => checkTasks([begin, ...history, end], { drainBoundMs: 10_000, ...options });
  const kinds = (history: HistoryLine[], options: Partial<TaskCheckOptions> = {}) => check(history, options).violations.map((v) => v.kind);

  it('passes a history where every task succeeded once, attempts in order, a killed attempt recovered', () => {
    const { violations, stats } = check(healthy(), { minRecovered: 1 });
    expect(violations).toEqual([]);
    expect(stats).toMatchObject({ tasks: 5, attempts: 7, retries: 2, recovered: 1, crashOverlaps: 1, maxAttempt: 2 });
  });

  it('reports a task lost: never started, or never succeeded', () => {
    const never = check([...healthy(), created(6)]);
    expect(never.violations.map((v) => v.kind)).toEqual(['task-lost']);
    expect(never.violations[0].detail).toBe('task 6 never succeeded (no attempt started)');
    const failed = [...healthy(), created(7), ...attempt(7, 1, 'r2', T0 + 900, 100, 'error')];
    expect(kinds(failed)).toEqual(['task-lost']);
  });

  it('reports a task that succeeded twice, unless the first success was cut before its end reached Redis', () => {
    const twice = [...healthy(), ...attempt(1, 2, 'r3', T0 + 3_000, 100)];
    expect(kinds(twice)).toEqual(['task-duplicate']);
    // r2 killed 50 ms after attempt 1 of task 1 returned: its lease expires and the task runs again.
    const cut = [...twice, nemesis('kill', T0 + 450, 'r2')];
    expect(kinds(cut)).toEqual(['task-duplicate']);
    const allowed = check(cut, { finishWindowMs: 100 });
    expect(allowed.violations).toEqual([]);
    expect(allowed.stats.crashDuplicates).toBe(1);
  });

  it('reports two attempts that overlap when the first one’s replica was neither killed nor stopped (a SIGTERM hand-back must end first)', () => {
    const overlapping = healthy().filter((line) => !(line.type === 'nemesis' && line.f === 'kill'));
    expect(kinds(overlapping)).toEqual(['task-overlap']);
    const handedBack = [created(8), ...attempt(8, 1, 'r2', T0 + 1_000, 320, 'aborted:shutdown'), nemesis('term', T0 + 1_010, 'r2'), ...attempt(8, 2, 'r3', T0 + 1_300, 100)];
    expect(kinds([...healthy(), ...handedBack])).toEqual(['task-overlap']);
  });

  it('reports attempt numbers or tokens that do not increase', () => {
    const again = [...healthy(), ...attempt(4, 2, 'r1', T0 + 1_100, 100, 'error')];
    expect(kinds(again)).toEqual(['task-attempts']);
    const token = healthy().map((line) => ((line.type === 'task-start' || line.type === 'task-end') && line.task === 4 && line.attempt === 2 ? { ...line, token: T0 } : line));
    expect(kinds(token)).toEqual(['task-fencing']);
  });

  it('reports a task done later than the bound after the faults stopped', () => {
    const late = [...healthy().filter((line) => !('task' in line && line.task === 3 && line.type !== 'task-created')), ...attempt(3, 1, 'r1', T0 + 15_500, 100)];
    expect(kinds(late)).toEqual(['task-late']);
  });

  it('fails a scenario in which no attempt was cut and recovered, or none handed back, when it requires some', () => {
    expect(kinds(healthy(), { minRecovered: 2 })).toEqual(['task-untested']);
    expect(kinds(healthy(), { minHandedBack: 1 })).toEqual(['task-untested']);
    const handedBack = [created(8), ...attempt(8, 1, 'r2', T0 + 1_000, 320, 'aborted:shutdown'), nemesis('term', T0 + 1_010, 'r2'), ...attempt(8, 2, 'r3', T0 + 1_330, 100)];
    expect(check([...healthy(), ...handedBack], { minHandedBack: 1 }).stats.handedBack).toBe(1);
    expect(kinds([...healthy(), ...handedBack], { minHandedBack: 1 })).toEqual([]);
  });

  it('is part of checkHistory, which expects no scheduled run of a history of only on-demand jobs', () => {
    const job: HistoryLine = { type: 'job', at: T0 - 1_000, job: 'work', every: 0, onDemand: true };
    const report = checkHistory([begin, job, ...healthy(), end], { allow: [], tasks: { drainBoundMs: 10_000 } });
    expect(report.violations).toEqual([]);
    expect(report.summary).toMatch(/PASS .*; tasks: 5 attempts=7 retries=2 recovered=1 handed-back=0 crash-overlaps=1 crash-duplicates=0 max-attempt=2/);
    expect(checkHistory([begin, job, ...healthy(), created(9), end], { allow: [], tasks: { drainBoundMs: 10_000 } }).ok).toBe(false);
  });
});
