import { MissedRuns, planMissed } from '../../lib/scheduling/missed-runs';
import { Schedule } from '../../lib/scheduling/schedule';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const HOUR = 3_600_000;
const GRACE = 30_000;
const policy = (p: Partial<MissedRuns> = {}) => ({ policy: 'once' as const, catchUpWindow: 24 * HOUR, maxCatchUp: 100, grace: GRACE, ...p });

describe('planMissed', () => {
  const hourly = new Schedule({ every: HOUR, jitter: 0 });
  const base = at('2026-03-01T00:00:00Z');

  it('plans nothing for a claim within the grace and before the next due time: the ordinary claim', () => {
    expect(planMissed(hourly, base, base, base + 5, policy())).toBeNull();
    expect(planMissed(hourly, base, base, base + GRACE, policy())).toBeNull();
    // A due time with jitter, claimed on time, is not missed however far it is from its base.
    expect(planMissed(hourly, base, base + 40 * 60_000, base + 40 * 60_000 + 200, policy())).toBeNull();
  });

  it('counts a due time missed past the grace, or once the next one has come', () => {
    const late = planMissed(hourly, base, base, base + GRACE + 1, policy())!;
    expect(late).toMatchObject({ serve: base, catchUp: true, skipped: null, missed: { count: 1, from: base, to: base } });
    // Claimed 10 ms after the next due time: both are missed (one episode), the latest runs.
    const next = planMissed(hourly, base, base, base + HOUR + 10, policy())!;
    expect(next).toMatchObject({ serve: base + HOUR, catchUp: true, missed: { count: 2, from: base, to: base + HOUR }, skipped: { count: 1 } });
    expect(planMissed(hourly, base, base, base + HOUR + 10, policy({ policy: 'skip' }))).toMatchObject({ serve: null, skipped: { count: 2 } });
  });

  // Down from 00:00 to 05:20: due times 00:00 … 05:00 missed (six of them).
  const now = at('2026-03-01T05:20:00Z');

  it("skip: nothing runs, every missed due time is skipped, and the job goes on at its next due time", () => {
    const plan = planMissed(hourly, base, base, now, policy({ policy: 'skip' }))!;
    expect(plan).toMatchObject({ serve: null, catchUp: false, through: at('2026-03-01T05:00:00Z'), runs: 0 });
    expect(plan.skipped).toEqual({ count: 6, exact: true, from: base, to: at('2026-03-01T05:00:00Z') });
    expect(iso(plan.next.due)).toBe('2026-03-01T06:00:00.000Z');
  });

  it('once: the latest missed due time runs, the others are skipped', () => {
    const plan = planMissed(hourly, base, base, now, policy())!;
    expect(iso(plan.serve)).toBe('2026-03-01T05:00:00.000Z');
    expect(plan).toMatchObject({ catchUp: true, runs: 1, missed: { count: 6 } });
    expect(plan.skipped).toEqual({ count: 5, exact: true, from: base, to: at('2026-03-01T04:00:00Z') });
    expect(iso(plan.next.due)).toBe('2026-03-01T06:00:00.000Z');
  });

  it('all: the oldest runs now and the next one is the next missed due time; the window and the cap skip the older ones', () => {
    const plan = planMissed(hourly, base, base, now, policy({ policy: 'all' }))!;
    expect(plan).toMatchObject({ serve: base, catchUp: true, skipped: null, runs: 6, through: base });
    expect(plan.next).toEqual({ base: base + HOUR, due: base + HOUR });
    // The last missed one is followed by the job's next due time.
    const last = planMissed(hourly, at('2026-03-01T05:00:00Z'), at('2026-03-01T05:00:00Z'), now, policy({ policy: 'all' }))!;
    expect(last).toMatchObject({ runs: 1, serve: at('2026-03-01T05:00:00Z') });
    expect(iso(last.next.due)).toBe('2026-03-01T06:00:00.000Z');
    // maxCatchUp 2: 04:00 and 05:00 run, the four before are skipped.
    const capped = planMissed(hourly, base, base, now, policy({ policy: 'all', maxCatchUp: 2 }))!;
    expect(iso(capped.serve)).toBe('2026-03-01T04:00:00.000Z');
    expect(capped).toMatchObject({ runs: 2, skipped: { count: 4, from: base, to: at('2026-03-01T03:00:00Z') } });
    expect(iso(capped.next.due)).toBe('2026-03-01T05:00:00.000Z');
    // A window of 2.5 h: 03:00, 04:00, 05:00 run.
    const windowed = planMissed(hourly, base, base, now, policy({ policy: 'all', catchUpWindow: 2.5 * HOUR }))!;
    expect(iso(windowed.serve)).toBe('2026-03-01T03:00:00.000Z');
    expect(windowed).toMatchObject({ runs: 3, skipped: { count: 3 } });
  });

  it('runs nothing for missed due times all older than the window', () => {
    const plan = planMissed(hourly, base, base, now, policy({ catchUpWindow: 10 * 60_000 }))!;
    expect(plan).toMatchObject({ serve: null, skipped: { count: 6 } });
  });

  it('leaves the threshold to the coordinator (a run later than it is skipped as late), and plans no chain of late runs for all', () => {
    const strict = planMissed(hourly, base, base, now, { ...policy(), threshold: 60_000 })!;
    expect(strict).toMatchObject({ serve: at('2026-03-01T05:00:00Z'), skipped: { count: 5 } });
    const all = planMissed(hourly, base, base, now, { ...policy({ policy: 'all' }), threshold: 90 * 60_000 })!;
    expect(all).toMatchObject({ serve: at('2026-03-01T04:00:00Z'), runs: 2, skipped: { count: 4 } });
    const allLate = planMissed(hourly, base, base, now, { ...policy({ policy: 'all' }), threshold: 60_000 })!;
    expect(allLate).toMatchObject({ serve: at('2026-03-01T05:00:00Z'), runs: 1, skipped: { count: 5 } });
  });

  it('follows a cron schedule in its time zone, across a change of offset', () => {
    // 03:00 every night in Paris; down from the night of 28 March to the morning of 31 March (DST on 29 March).
    const nightly = new Schedule({ cron: '0 3 * * *', timeZone: 'Europe/Paris', jitter: 0 });
    const first = at('2026-03-28T02:00:00Z');
    const back = at('2026-03-31T08:00:00Z');
    const once = planMissed(nightly, first, first, back, policy())!;
    expect(once.missed).toMatchObject({ count: 4, from: first, to: at('2026-03-31T01:00:00Z') });
    expect(iso(once.serve)).toBe('2026-03-31T01:00:00.000Z');
    const all = planMissed(nightly, first, first, back, policy({ policy: 'all', catchUpWindow: 48 * HOUR }))!;
    expect(iso(all.serve)).toBe('2026-03-30T01:00:00.000Z');
    expect(all).toMatchObject({ runs: 2, skipped: { count: 2, to: at('2026-03-29T01:00:00Z') } });
    expect(iso(all.next.due)).toBe('2026-03-31T01:00:00.000Z');
  });

  it('counts the due times of a cron schedule only so far, and says so', () => {
    const everySecond = new Schedule({ cron: '* * * * * *', jitter: 0 });
    const plan = planMissed(everySecond, base, base, base + 20_000_000, policy({ policy: 'skip' }))!;
    expect(plan.missed.exact).toBe(false);
    expect(plan.missed.count).toBeGreaterThanOrEqual(10_000);
  });
});
