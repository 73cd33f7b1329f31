import { CronExpressionParser } from 'cron-parser';
import { Schedule } from '../../lib/scheduling/schedule';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();

describe('Schedule', () => {
  describe('every', () => {
    const schedule = new Schedule({ every: 1000, jitter: 0 });

    it('starts one period after now', () => {
      expect(schedule.nextBase(null, 5_500)).toBe(6_500);
    });

    it('keeps the cadence of the previous base, strictly after now', () => {
      expect(schedule.nextBase(5_000, 5_000)).toBe(6_000);
      expect(schedule.nextBase(5_000, 5_001)).toBe(6_000);
      expect(schedule.nextBase(5_000, 5_999)).toBe(6_000);
      expect(schedule.nextBase(5_000, 6_000)).toBe(7_000);
    });

    it('fires once, not once per missed period, after a long gap', () => {
      expect(schedule.nextBase(5_000, 9_250)).toBe(10_000);
    });
  });

  describe('cron', () => {
    it('reads a 6-field expression with seconds', () => {
      const schedule = new Schedule({ cron: '*/15 * * * * *', jitter: 0 });
      expect(iso(schedule.nextBase(null, at('2026-01-01T00:00:07.500Z')))).toBe('2026-01-01T00:00:15.000Z');
      expect(iso(schedule.nextBase(at('2026-01-01T00:00:15Z'), at('2026-01-01T00:00:15.002Z')))).toBe('2026-01-01T00:00:30.000Z');
    });

    it('reads a 5-field expression in its time zone', () => {
      const schedule = new Schedule({ cron: '0 9 * * *', timeZone: 'Asia/Tokyo', jitter: 0 });
      expect(iso(schedule.nextBase(null, at('2026-06-01T12:00:00Z')))).toBe('2026-06-02T00:00:00.000Z');
    });

    it('runs a job whose local time does not exist on the spring-forward day once, an hour later', () => {
      const schedule = new Schedule({ cron: '30 2 * * *', timeZone: 'Europe/Berlin', jitter: 0 });
      expect(schedule.preview(3, at('2026-03-28T00:00:00Z')).map(iso)).toEqual([
        '2026-03-28T01:30:00.000Z',
        '2026-03-29T01:30:00.000Z', // 03:30 CEST: 02:30 was skipped by the clock change
        '2026-03-30T00:30:00.000Z',
      ]);
    });

    it('runs a fixed-time job once on the fall-back day, and an hourly job in both repeated hours', () => {
      const daily = new Schedule({ cron: '30 1 * * *', timeZone: 'America/New_York', jitter: 0 });
      expect(daily.preview(2, at('2026-10-31T12:00:00Z')).map(iso)).toEqual(['2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z']);
      const hourly = new Schedule({ cron: '0 * * * *', timeZone: 'America/New_York', jitter: 0 });
      expect(hourly.preview(3, at('2026-11-01T04:30:00Z')).map(iso)).toEqual([
        '2026-11-01T05:00:00.000Z', // 01:00 EDT
        '2026-11-01T06:00:00.000Z', // 01:00 EST
        '2026-11-01T07:00:00.000Z',
      ]);
    });
  });

  describe('jitter', () => {
    it('adds at most jitter × period to due, never to base', () => {
      const schedule = new Schedule({ every: 10_000, jitter: 0.3 });
      expect(schedule.next(0, 0, () => 0)).toEqual({ base: 10_000, due: 10_000 });
      expect(schedule.next(0, 0, () => 0.999999)).toEqual({ base: 10_000, due: 12_999 });
      for (let i = 0; i < 1000; i++) {
        const { base, due } = schedule.next(0, 0);
        expect(base).toBe(10_000);
        expect(due).toBeGreaterThanOrEqual(10_000);
        expect(due).toBeLessThan(13_000);
      }
    });

    it('does not accumulate: the next base follows the previous base', () => {
      const schedule = new Schedule({ every: 10_000, jitter: 0.5 });
      const first = schedule.next(0, 0, () => 0.9);
      const second = schedule.next(first.base, first.due, () => 0.9);
      expect(second.base).toBe(20_000);
    });

    it('takes the period of a cron schedule as the gap to its next fire', () => {
      const schedule = new Schedule({ cron: '0 * * * *', jitter: 0.5 });
      const { base, due } = schedule.next(null, at('2026-01-01T00:10:00Z'), () => 0.5);
      expect(iso(base)).toBe('2026-01-01T01:00:00.000Z');
      expect(due - base).toBe(15 * 60_000);
    });
  });

  describe('preview', () => {
    afterEach(() => jest.restoreAllMocks());

    it('computes 1,000 cron times with one iterator, the same times as step by step', () => {
      const schedule = new Schedule({ cron: '*/10 * * * * *', timeZone: 'Europe/Berlin', jitter: 0 });
      const from = at('2026-03-29T00:59:55Z');
      const stepwise: number[] = [];
      let base: number | null = null;
      for (let i = 0, now = from; i < 1_000; i++, now = base!) stepwise.push((base = schedule.nextBase(base, now)));
      const parse = jest.spyOn(CronExpressionParser, 'parse');
      expect(schedule.preview(1_000, from)).toEqual(stepwise);
      expect(parse).toHaveBeenCalledTimes(1);
    });

    it('computes periods without any parsing', () => {
      expect(new Schedule({ every: 1_000, jitter: 0.5 }).preview(3, 10_000)).toEqual([11_000, 12_000, 13_000]);
    });
  });
});
