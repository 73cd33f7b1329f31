import { checkHistory } from './checker';
import { checkCheckpoints, CheckpointCheckOptions } from './checkpoint-checker';
import type { CheckpointLine, HistoryLine, LogLine, NemesisLine, ResumeLine, StartLine } from './history';

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

/**
 * The checkpoint checks (checkpoint-checker.ts) on made-up histories of one checkpointing job:
 * each bad lastCheckpoint is reported, and the good one next to it passes.
 */
describe('fault checker: checkpoints', () => {
  const T0 = 1_800_000_000_000;
  const LOCK_TTL = 2_000;
  const begin: HistoryLine = { type: 'scenario', phase: 'begin', at: T0, name: 'made-up', seed: 1, lockTtl: LOCK_TTL };
  const jobLine = (maxUpdates = 10, interval = 1_000): HistoryLine => ({ type: 'job', at: T0 - 1_000, job: 'ck', every: 1_000, checkpoint: { maxUpdates, interval } });
  type Last = NonNullable<ResumeLine['last']>;

  /** A run: its start and resume lines, `items` calls `pace` ms apart from its last item on, and its end (unless `end: false`). */
  function ckRun(token: number, start: number, last: Last | null, items: number, options: { instance?: string; pace?: number; end?: boolean; aborted?: string } = {}): HistoryLine[] {
    const { instance = `r${token}`, pace = 50, end = true } = options;
    const from = last?.item ?? 0;
    const run = { job: 'ck', token, instance };
    const lines: HistoryLine[] = [
      { type: 'start', ...run, due: start, trigger: 'SCHEDULE', start, ctxStart: start, localStart: start },
      { type: 'resume', ...run, at: start, last },
    ];
    for (let k = 1; k <= items; k++) lines.push({ type: 'checkpoint', ...run, item: from + k, at: start + k * pace });
    if (end) lines.push({ type: 'end', ...run, due: start, end: start + items * pace + 5, aborted: options.aborted ?? null });
    return lines;
  }
  /** What a run finds when `item` of `lines` was the last written: that call's state, token and time. */
  function found(lines: HistoryLine[], item: number): Last {
    const call = lines.find((line): line is CheckpointLine => line.type === 'checkpoint' && line.item === item)!;
    return { item, stateToken: call.token, token: call.token, savedAt: call.at + 2 };
  }
  const at = (lines: HistoryLine[], item: number) => lines.find((line): line is CheckpointLine => line.type === 'checkpoint' && line.item === item)!.at;
  const kinds = (history: HistoryLine[], options: CheckpointCheckOptions = {}) => checkCheckpoints([begin, ...history], options).violations.map((v) => v.kind);
  const nemesis = (f: NemesisLine['f'], atTime: number, instance: string): NemesisLine => ({ type: 'nemesis', f, at: atTime, instance });
  const refusal = (token: number, atTime: number, instance: string): LogLine => ({
    type: 'log',
    level: 'warn',
    at: atTime,
    instance,
    context: 'DistributedScheduler',
    message: `Job "ck": a checkpoint of the run with fencing token ${token} was refused: the job's checkpoint is fenced at token ${token + 1} (a newer run took the job over, or the checkpoint was cleared). The checkpoints of this run are dropped from now on.`,
  });

  it('passes runs that each resume where the one before ended', () => {
    const a = ckRun(1, T0 + 100, null, 30);
    const b = ckRun(2, T0 + 2_000, found(a, 30), 30);
    const c = ckRun(3, T0 + 4_000, found(b, 60), 30);
    const { violations, stats } = checkCheckpoints([begin, jobLine(), ...a, ...b, ...c]);
    expect(violations).toEqual([]);
    expect(stats).toMatchObject({ resumes: 3, afterCut: 0, zombies: 0, refusals: 0 });
  });

  it('reports a run that does not resume from the last call of a run that ended by itself', () => {
    const a = ckRun(1, T0 + 100, null, 30);
    expect(kinds([jobLine(), ...a, ...ckRun(2, T0 + 2_000, found(a, 29), 30)])).toEqual(['checkpoint-behind']);
    expect(kinds([jobLine(), ...a, ...ckRun(2, T0 + 2_000, null, 30)])).toEqual(['checkpoint-behind']);
  });

  it('after a kill -9, lets the next run be at most maxUpdates calls behind, never ahead', () => {
    // Killed 10 ms after its 25th call (calls 50 ms apart). A write started in the last 100 ms may not have
    // reached Redis: counted from the 23rd call, the run after it may resume from item 13 to 25.
    const a = ckRun(1, T0 + 100, null, 25, { end: false });
    const kill = nemesis('kill', at(a, 25) + 10, 'r1');
    const after = (item: number) => [jobLine(), ...a, kill, ...ckRun(2, T0 + 4_000, found(a, item), 10)];
    expect(kinds(after(20))).toEqual([]);
    expect(kinds(after(13))).toEqual([]);
    expect(kinds(after(12))).toEqual(['checkpoint-behind']);
    expect(checkCheckpoints([begin, ...after(12)]).violations[0].detail).toMatch(/r1#1 had reached item 23 100 ms before its kill \(item 25 at it\): more than maxUpdates \(10\) behind/);
    expect(checkCheckpoints([begin, ...after(14)], { writeMs: 0 }).violations.map((v) => v.kind)).toEqual(['checkpoint-behind']);
    // Ahead of the dead run: a state it never passed.
    const ahead = ckRun(2, T0 + 4_000, { item: 26, stateToken: 1, token: 1, savedAt: at(a, 25) + 40 }, 10);
    expect(kinds([jobLine(), ...a, kill, ...ahead])).toEqual(['checkpoint-phantom', 'checkpoint-ahead']);
    const { stats } = checkCheckpoints([begin, ...after(20)], { minResumesAfterCut: 1 });
    expect(stats).toMatchObject({ afterCut: 1, maxLagAfterCut: 5 });
  });

  it('after a kill -9, requires the calls made interval (plus slack) before it to be written', () => {
    // maxUpdates 50: only the 1 s interval flushes. Calls every 250 ms, killed 10 ms after the 12th (at +3 s):
    // the 6th (at +1.5 s) was made 1.51 s before the kill, so it (or a later one) must have been written.
    const a = ckRun(1, T0, null, 12, { pace: 250, end: false });
    const kill = nemesis('kill', at(a, 12) + 10, 'r1');
    const after = (item: number) => [jobLine(50), ...a, kill, ...ckRun(2, T0 + 6_000, found(a, item), 4, { pace: 250 })];
    expect(kinds(after(8))).toEqual([]);
    expect(kinds(after(6))).toEqual([]);
    expect(kinds(after(5))).toEqual(['checkpoint-behind']);
    expect(checkCheckpoints([begin, ...after(5)]).violations[0].detail).toMatch(/had passed item 6 more than interval \(1000 ms\) \+ 500 ms before its kill at item 12/);
  });

  it('reports a lastCheckpoint no run passed before the run started, with a wrong token, or a wrong savedAt', () => {
    const a = ckRun(1, T0 + 100, null, 30);
    const withLast = (last: Last) => [jobLine(), ...a, ...ckRun(2, T0 + 2_000, last, 5)];
    const good = found(a, 30);
    expect(kinds(withLast(good))).toEqual([]);
    // The library reporting another writer's token than the one that passed the state.
    expect(kinds(withLast({ ...good, token: 0 }))).toEqual(['checkpoint-phantom']);
    expect(kinds(withLast({ ...good, savedAt: good.savedAt + 5_000 }))).toEqual(['checkpoint-phantom']);
    expect(kinds(withLast({ ...good, item: 31 }))).toEqual(expect.arrayContaining(['checkpoint-phantom', 'checkpoint-ahead']));
    // A token not below the run's own.
    expect(kinds([jobLine(), ...a, ...ckRun(2, T0 + 2_000, { ...good, token: 2, stateToken: 2 }, 5)])).toContain('checkpoint-phantom');
  });

  /**
   * The zombie scenario: Z (token 1) is stopped after its 20th call; S (token 2) takes over and
   * finds item 20, makes 10 calls and is stopped; Z resumes, calls once more (item 21) and once in
   * its abort, refused; S is killed; R (token 3) must find S's progress, never Z's.
   */
  function zombieHistory(options: { sFlushed: boolean; refusals?: number } = { sFlushed: true }) {
    const z = ckRun(1, T0 + 100, null, 20, { end: false });
    const stop = nemesis('stop', at(z, 20) + 10, 'r1');
    const s = ckRun(2, T0 + 3_500, found(z, 20), options.sFlushed ? 10 : 3, { end: false });
    const sStop = nemesis('stop', T0 + 4_200, 'r2');
    const cont = nemesis('cont', T0 + 4_205, 'r1');
    const late: HistoryLine[] = [
      { type: 'checkpoint', job: 'ck', token: 1, instance: 'r1', item: 21, at: T0 + 4_210 },
      { type: 'checkpoint', job: 'ck', token: 1, instance: 'r1', item: 21, at: T0 + 4_212, onAbort: true },
      { type: 'end', job: 'ck', due: T0 + 100, token: 1, instance: 'r1', end: T0 + 4_213, aborted: 'lease-lost' },
      ...Array.from({ length: options.refusals ?? 1 }, () => refusal(1, T0 + 4_215, 'r1')),
    ];
    const kill = nemesis('kill', T0 + 4_800, 'r2');
    const lines = [jobLine(), ...z, stop, ...s, sStop, cont, ...late, kill];
    return { z, s, lines, resumeFrom: (last: Last) => [...lines, ...ckRun(3, T0 + 6_500, last, 5)] };
  }

  it('passes a zombie refused once, the next run resuming from its successor', () => {
    const { s, resumeFrom } = zombieHistory();
    const { violations, stats } = checkCheckpoints([begin, ...resumeFrom(found(s, 30))], { minZombies: 1, minResumesAfterCut: 2 });
    expect(violations).toEqual([]);
    expect(stats).toMatchObject({ resumes: 3, afterCut: 2, zombies: 1, refusals: 1 });
  });

  it("reports a zombie's checkpoint written after its successor's claim", () => {
    const { z, lines, resumeFrom } = zombieHistory();
    const zombieWrite: Last = { item: 21, stateToken: 1, token: 1, savedAt: T0 + 4_211 };
    const report = checkCheckpoints([begin, ...resumeFrom(zombieWrite)]);
    expect(report.violations.map((v) => v.kind)).toEqual(expect.arrayContaining(['checkpoint-fenced']));
    expect(report.violations.find((v) => v.kind === 'checkpoint-fenced')!.detail).toMatch(/r3#3 resumed from item 21 written by token 1, written after r2#2 claimed the job .*a fenced write was accepted/);
    // Even a state Z passed before its stop, if written after S's claim (S found item 20, not 19 or 20's successor).
    const older = checkCheckpoints([begin, ...lines, ...ckRun(3, T0 + 6_500, found(z, 19), 5)]).violations.map((v) => v.kind);
    expect(older).toEqual(expect.arrayContaining(['checkpoint-fenced', 'checkpoint-backwards']));
  });

  it('passes the next run finding what the successor found when the successor was stopped before its first flush, and nothing else', () => {
    const { z, s, resumeFrom } = zombieHistory({ sFlushed: false });
    expect(kinds(resumeFrom(found(z, 20)))).toEqual([]);
    expect(kinds(resumeFrom(found(s, 23)))).toEqual([]);
    expect(kinds(resumeFrom({ item: 21, stateToken: 1, token: 1, savedAt: T0 + 4_211 }))).toContain('checkpoint-fenced');
  });

  it('reports a zombie that logged no refusal, or more than one', () => {
    const run = (refusals: number) => {
      const { s, resumeFrom } = zombieHistory({ sFlushed: true, refusals });
      return kinds(resumeFrom(found(s, 30)));
    };
    expect(run(1)).toEqual([]);
    expect(run(0)).toEqual(['checkpoint-refusal']);
    expect(run(2)).toEqual(['checkpoint-refusal', 'checkpoint-refusal']);
  });

  it('reports checkpoints whose tokens or items go back across runs', () => {
    const a = ckRun(1, T0 + 100, null, 30);
    const b = ckRun(2, T0 + 2_000, found(a, 30), 30, { aborted: 'stopped' });
    // c finds b's item 40 (b aborted: no bound from b), d finds a's item 30 again after c found 40.
    const c = ckRun(3, T0 + 4_000, found(b, 40), 0, { aborted: 'stopped' });
    expect(kinds([jobLine(), ...a, ...b, ...c])).toEqual([]);
    const d = ckRun(4, T0 + 6_000, found(a, 30), 0);
    expect(kinds([jobLine(), ...a, ...b, ...c, ...d])).toEqual(expect.arrayContaining(['checkpoint-fenced', 'checkpoint-backwards']));
  });

  it('fails a scenario in which no run resumed after a cut, or no zombie tried, when it requires them', () => {
    const a = ckRun(1, T0 + 100, null, 30);
    const b = ckRun(2, T0 + 2_000, found(a, 30), 30);
    expect(kinds([jobLine(), ...a, ...b], { minResumesAfterCut: 1, minZombies: 1 })).toEqual(['checkpoint-untested', 'checkpoint-untested']);
  });

  it('is part of checkHistory when the scenario asks for it', () => {
    const { resumeFrom } = zombieHistory();
    const history = [...resumeFrom({ item: 21, stateToken: 1, token: 1, savedAt: T0 + 4_211 }), { ...begin, phase: 'end' as const, at: T0 + 9_000 }];
    const report = checkHistory([begin, ...history], { allow: [{ kind: 'crash' }], checkpoints: {} });
    expect(report.violations.map((v) => v.kind)).toContain('checkpoint-fenced');
    expect(report.summary).toMatch(/checkpoints: resumes=3 after-cut=2 \(max lag \d+ items\) zombies=1 refusals=1/);
    expect(checkHistory([begin, ...history], { allow: [{ kind: 'crash' }] }).violations.map((v) => v.kind)).not.toContain('checkpoint-fenced');
  });
});
