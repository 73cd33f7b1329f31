import { checkHistory } from './checker';
import type { HistoryLine, NemesisLine, StartLine } from './history';

/**
 * The checker must catch what the scenarios are for: each planted anomaly in a made-up history
 * is reported, and the same history without it passes.
 */
describe('fault checker', () => {
  const T0 = 1_800_000_000_000;
  const LOCK_TTL = 2_000;
  const begin: HistoryLine = { type: 'scenario', phase: 'begin', at: T0, name: 'made-up', seed: 1, lockTtl: LOCK_TTL };
  const end: HistoryLine = { type: 'scenario', phase: 'end', at: T0 + 10_000, name: 'made-up', seed: 1, lockTtl: LOCK_TTL };
  const job: HistoryLine = { type: 'job', at: T0 - 1_000, job: 'tick', every: 500 };

  function run(due: number, overrides: Partial<StartLine> = {}, busy = 10): HistoryLine[] {
    const at = overrides.start ?? due + 3;
    const start: StartLine = { type: 'start', job: 'tick', due, token: due + 1, instance: 'r1', trigger: 'SCHEDULE', start: at, ctxStart: at, localStart: at, ...overrides };
    return [start, { type: 'end', job: 'tick', due, token: start.token, instance: start.instance, end: start.start + busy, aborted: null }];
  }
  const dues = (from: number, to: number) => Array.from({ length: (to - from) / 500 + 1 }, (_, i) => from + i * 500);
  const clean = () => dues(T0 + 500, T0 + 10_000).flatMap((due) => run(due));
  const nemesis = (f: NemesisLine['f'], at: number, extra: Partial<NemesisLine> = {}): NemesisLine => ({ type: 'nemesis', f, at, ...extra });

  it('passes a history where every due time ran once, in order, on time', () => {
    const report = checkHistory([begin, job, ...clean(), end], { allow: [] });
    expect(report.violations).toEqual([]);
    expect(report.summary).toMatch(/^made-up seed=1: PASS runs=20 duplicates=0 lost=0 \(allowed 0\)/);
    expect(report.lag.tick).toEqual({ runs: 20, p50: 3, p99: 3, max: 3 });
  });

  it('reports a due time that ran twice', () => {
    const report = checkHistory([begin, job, ...clean(), ...run(T0 + 3_000, { instance: 'r2', token: T0 + 3_100, start: T0 + 3_107 }), end], { allow: [] });
    expect(report.violations.map((v) => v.kind)).toEqual(expect.arrayContaining(['duplicate']));
    expect(report.violations.find((v) => v.kind === 'duplicate')!.detail).toMatch(/ran 2 times: r1#\d+ at \+3 ms, r2#\d+ at \+107 ms/);
  });

  it('reports lost due times unless the scenario allows them, and lets an outage run its fires once, late', () => {
    const lost = [T0 + 4_000, T0 + 4_500, T0 + 5_000];
    const history = [begin, job, ...clean().filter((line) => !('due' in line) || !lost.includes(line.due)), end];
    expect(checkHistory(history, { allow: [] }).violations.filter((v) => v.kind === 'lost')).toHaveLength(3);

    // Redis down from 3.9 s to 5.2 s: the fire due at 4 s runs once, late, the others are skipped.
    const outage = [nemesis('redis-down', T0 + 3_900), nemesis('redis-up', T0 + 5_200), ...run(T0 + 4_000, { start: T0 + 5_300 })];
    const allowed = checkHistory([...history, ...outage], { allow: [{ kind: 'outage' }] });
    expect(allowed.violations).toEqual([]);
    expect(allowed.allowedLost).toBe(2);
    // Without its late run, the outage's policy is broken.
    expect(checkHistory([...history, ...outage.slice(0, 2)], { allow: [{ kind: 'outage' }] }).violations.map((v) => v.kind)).toEqual(['late-run-missing']);
  });

  it('allows the due times before a state loss was detected, and a re-based cadence, only with the state-loss allowance', () => {
    const before = dues(T0 + 500, T0 + 4_000).flatMap((due) => run(due));
    const after = dues(T0 + 4_730, T0 + 9_730).flatMap((due) => run(due));
    const history = [begin, job, nemesis('flushall', T0 + 4_100), ...before, ...after, end];
    expect(checkHistory(history, { allow: [] }).violations.map((v) => v.kind)).toEqual(['irregular']);
    expect(checkHistory(history, { allow: [{ kind: 'state-loss' }] }).violations).toEqual([]);
  });

  it('reports a run that started before its due time, and ctx.startedAt off the true clock', () => {
    const early = checkHistory([begin, job, ...clean().filter((line) => !('due' in line) || line.due !== T0 + 2_000), ...run(T0 + 2_000, { start: T0 + 1_990 }), end], { allow: [] });
    expect(early.violations.map((v) => v.kind)).toEqual(['early']);
    const skewed = checkHistory([begin, job, ...clean().filter((line) => !('due' in line) || line.due !== T0 + 2_000), ...run(T0 + 2_000, { ctxStart: T0 - 3_000 }), end], { allow: [] });
    expect(skewed.violations.map((v) => v.kind)).toEqual(['clock']);
  });

  it('reports fencing tokens that do not increase with due time, or with runs started under a live lease', () => {
    const swapped = clean().map((line) => (line.type !== 'job' && 'due' in line && line.due === T0 + 3_000 ? { ...line, token: T0 + 2_000 } : line));
    expect(checkHistory([begin, job, ...swapped, end], { allow: [] }).violations.map((v) => v.kind)).toContain('fencing');

    // A manual run that starts while a scheduled run holds its lease, with a lower token.
    const manual = run(T0 + 6_000, { trigger: 'MANUAL', token: T0 + 5_000, start: T0 + 6_004, instance: 'r2' });
    const history = [begin, job, ...clean().filter((line) => !('due' in line) || line.due !== T0 + 6_000), ...run(T0 + 6_000, {}, 200), ...manual, end];
    const report = checkHistory(history, { allow: [] });
    expect(report.violations.map((v) => v.kind)).toEqual(['fencing']);
    expect(report.violations[0].detail).toMatch(/r2#\d+ started while r1#\d+ held its lease/);
  });

  it('lets a crashed replica lose the fire it had claimed, and its lease block the job for lockTtl, only with the crash allowance', () => {
    const gone = dues(T0 + 3_000, T0 + 5_000);
    const history = [begin, job, nemesis('kill', T0 + 3_100, { instance: 'r1' }), ...clean().filter((line) => !('due' in line) || !gone.includes(line.due)), end];
    expect(checkHistory(history, { allow: [] }).violations.filter((v) => v.kind === 'lost')).toHaveLength(5);
    expect(checkHistory(history, { allow: [{ kind: 'crash' }] }).violations).toEqual([]);
  });

  it('reports a run aborted or never ended after SIGTERM, when the scenario drains', () => {
    const history = [begin, job, ...clean(), nemesis('term', T0 + 3_005, { instance: 'r1' })];
    const aborted = history.map((line) => (line.type === 'end' && line.due === T0 + 3_000 ? { ...line, aborted: 'shutdown' } : line));
    expect(checkHistory([...history, end], { allow: [], drain: true }).violations).toEqual([]);
    expect(checkHistory([...aborted, end], { allow: [], drain: true }).violations.map((v) => v.kind)).toEqual(['drain']);
  });
});
