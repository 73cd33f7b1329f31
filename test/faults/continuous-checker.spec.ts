import { checkHistory } from './checker';
import { checkContinuous, ContinuousCheckOptions } from './continuous-checker';
import type { HistoryLine, NemesisLine, TickLine } from './history';

/**
 * The continuous checker must catch what continuous-kill and continuous-sigstop are for: more
 * than `max` runs live, a zombie tick, a dead holder replaced too late, tokens out of order. Each
 * made-up history passes without its planted anomaly.
 */
describe('continuous checker', () => {
  const T0 = 1_800_000_000_000;
  const BOUND = 2_500;
  const begin: HistoryLine = { type: 'scenario', phase: 'begin', at: T0, name: 'made-up', seed: 1, lockTtl: 2_000, sessionTtl: 1_500 };
  const end: HistoryLine = { type: 'scenario', phase: 'end', at: T0 + 10_000, name: 'made-up', seed: 1, lockTtl: 2_000 };
  const job = (name: string, max: number): HistoryLine => ({ type: 'job', at: T0 - 1_000, job: name, every: 0, continuous: { max } });
  const nemesis = (f: NemesisLine['f'], at: number, instance: string): NemesisLine => ({ type: 'nemesis', f, at, instance });

  /** A run of `token` on `instance` ticking every 50 ms over [from, to] (both included when on the beat). */
  function ticks(name: string, token: number, instance: string, from: number, to: number, acquiredAt = from - 5): TickLine[] {
    const lines: TickLine[] = [];
    for (let at = from, seq = 0; at <= to; at += 50, seq++) lines.push({ type: 'tick', job: name, token, instance, at, acquiredAt, seq });
    return lines;
  }
  const check = (history: HistoryLine[], options: Partial<ContinuousCheckOptions> = {}) => checkContinuous([begin, ...history, end], { replaceBoundMs: BOUND, ...options });
  const kinds = (history: HistoryLine[], options: Partial<ContinuousCheckOptions> = {}) => check(history, options).violations.map((v) => v.kind);

  /** The leader on r1, killed at 3 s; r2 takes over 2 s later; the pair on r1 and r2 throughout, then r3 replaces r1. */
  function healthy(): HistoryLine[] {
    return [
      job('leader', 1),
      job('pair', 2),
      ...ticks('leader', T0 + 1, 'r1', T0 - 500, T0 + 3_000),
      nemesis('kill', T0 + 3_020, 'r1'),
      ...ticks('leader', T0 + 5_000, 'r2', T0 + 5_000, T0 + 10_000),
      ...ticks('pair', T0 + 2, 'r1', T0 - 500, T0 + 3_000),
      ...ticks('pair', T0 + 3, 'r2', T0 - 400, T0 + 10_000),
      ...ticks('pair', T0 + 5_100, 'r3', T0 + 5_100, T0 + 10_000),
    ];
  }

  it('passes a history where each job ran at most max runs and was replaced within the bound', () => {
    const { violations, stats } = check(healthy(), { minHolderFaults: 1 });
    expect(violations).toEqual([]);
    expect(stats.jobs.leader).toEqual({ max: 1, tokens: 2, longestShortMs: 2_000, shortSpans: 1 });
    expect(stats.jobs.pair.longestShortMs).toBe(2_100);
    expect(stats.holderFaults).toBe(1);
  });

  it('reports three live tokens of a max-2 job', () => {
    const third = ticks('pair', T0 + 1_000, 'r4', T0 + 1_000, T0 + 2_000);
    const { violations } = check([...healthy(), ...third]);
    const overMax = violations.filter((v) => v.kind === 'continuous-over-max');
    expect(overMax).toHaveLength(1);
    expect(overMax[0].detail).toMatch(/^3 runs live .* max 2$/);
    // A slot was given to r4 while r1 and r2 ticked: by the slot script's count, their leases had gone.
    expect(new Set(violations.map((v) => v.kind))).toEqual(new Set(['continuous-over-max', 'continuous-zombie']));
  });

  it('reports the ticks of an older token after a newer one took the slot (a zombie), allowing one right after SIGCONT', () => {
    // r2 stopped at 5 s, replaced by r3 at 7.3 s, resumed at 8 s: ticks once, then a second time.
    const history = [
      job('leader', 1),
      ...ticks('leader', T0 + 1, 'r2', T0 - 500, T0 + 5_000),
      nemesis('stop', T0 + 5_010, 'r2'),
      ...ticks('leader', T0 + 7_300, 'r3', T0 + 7_300, T0 + 10_000),
      nemesis('cont', T0 + 8_000, 'r2'),
      ...ticks('leader', T0 + 1, 'r2', T0 + 8_003, T0 + 8_003),
    ];
    expect(kinds(history)).toEqual(['continuous-zombie', 'continuous-over-max']);
    const allowed = check(history, { zombieAllowanceMs: 100 });
    expect(allowed.violations).toEqual([]);
    expect(allowed.stats).toMatchObject({ zombieTicks: 1, allowedZombieTicks: 1, zombieDelaysAfterCont: [3] });
    // A second tick after the same wake is not the overdue timer: a violation.
    const twice = [...history, ...ticks('leader', T0 + 1, 'r2', T0 + 8_053, T0 + 8_053)];
    expect(kinds(twice, { zombieAllowanceMs: 100 })).toEqual(['continuous-zombie', 'continuous-over-max']);
    // A zombie tick long after SIGCONT is one whatever the allowance.
    const late = history.map((line) => (line.type === 'tick' && line.at === T0 + 8_003 ? { ...line, at: T0 + 8_400 } : line));
    expect(kinds(late, { zombieAllowanceMs: 100 })).toEqual(['continuous-zombie', 'continuous-over-max']);
  });

  it('does not take a max-2 holder for a zombie when the other slot changed hands twice', () => {
    // r1 holds one slot throughout; r2 is killed, r3 takes the slot, is killed, r4 takes it.
    const history = [
      job('pair', 2),
      ...ticks('pair', T0 + 1, 'r1', T0 - 500, T0 + 10_000),
      ...ticks('pair', T0 + 2, 'r2', T0 - 500, T0 + 1_000),
      ...ticks('pair', T0 + 3_000, 'r3', T0 + 3_000, T0 + 4_000),
      ...ticks('pair', T0 + 6_000, 'r4', T0 + 6_000, T0 + 10_000),
    ];
    expect(kinds(history)).toEqual([]);
  });

  it('finds the zombie among three live tokens of a max-2 job: the one frozen while a newer one took its slot', () => {
    const history = [
      job('pair', 2),
      ...ticks('pair', T0 + 1, 'r1', T0 - 500, T0 + 10_000),
      ...ticks('pair', T0 + 2, 'r2', T0 - 500, T0 + 2_000),
      nemesis('stop', T0 + 2_010, 'r2'),
      ...ticks('pair', T0 + 4_300, 'r3', T0 + 4_300, T0 + 10_000),
      nemesis('cont', T0 + 6_000, 'r2'),
      ...ticks('pair', T0 + 2, 'r2', T0 + 6_002, T0 + 6_202),
    ];
    const zombies = check(history).violations.filter((v) => v.kind === 'continuous-zombie');
    expect(zombies).toHaveLength(5);
    expect(zombies.every((v) => v.detail.startsWith('r2#'))).toBe(true);
    // Its first tick on waking is allowed; the four after it are not, and make three live.
    expect(kinds(history, { zombieAllowanceMs: 100 })).toEqual([...Array(4).fill('continuous-zombie'), 'continuous-over-max']);
  });

  it('reports a job left short of max for longer than the bound', () => {
    const history = healthy().map((line) => (line.type === 'tick' && line.token === T0 + 5_000 ? { ...line, at: line.at + 1_000 } : line));
    const { violations } = check(history);
    expect(violations.map((v) => v.kind)).toEqual(['continuous-gap']);
    expect(violations[0].detail).toMatch(/as few as 0 of 1 run\(s\) live for 3000 ms/);
  });

  it('reports a token on two replicas, and tokens that do not increase with their issue', () => {
    const twice = [...healthy(), ...ticks('leader', T0 + 5_000, 'r4', T0 + 5_020, T0 + 5_020)];
    expect(kinds(twice)).toContain('continuous-token');
    const backwards = healthy().map((line) => (line.type === 'tick' && line.token === T0 + 5_000 ? { ...line, token: T0 } : line));
    expect(kinds(backwards)).toContain('continuous-token');
  });

  it('fails a scenario whose nemesis hit no holder when it requires one', () => {
    const history = healthy().filter((line) => line.type !== 'nemesis');
    expect(kinds(history, { minHolderFaults: 1 })).toEqual(['continuous-untested']);
  });

  it('is part of checkHistory, which expects no scheduled run of a history of only continuous jobs', () => {
    const report = checkHistory([begin, ...healthy(), end], { allow: [], continuous: { replaceBoundMs: BOUND } });
    expect(report.violations).toEqual([]);
    expect(report.summary).toMatch(/PASS .*; continuous: leader \(max 1\) tokens=2 longest short 2000 ms, pair \(max 2\) tokens=3 longest short 2100 ms; zombie ticks=0/);
    const over = checkHistory([begin, ...healthy(), ...ticks('leader', T0 + 900, 'r3', T0 + 900, T0 + 1_000), end], { allow: [], continuous: { replaceBoundMs: BOUND } });
    expect(over.ok).toBe(false);
  });
});
