import { Schedule } from '../../lib/scheduling/schedule';

// A base already served may be ahead of this replica's clock (a clock behind Redis's, or a due
// time another replica computed): the next one follows it, never one between now and it.
describe('Schedule.nextBase after a base ahead of now', () => {
  it('a cron schedule continues after the served base, not after now', () => {
    const schedule = new Schedule({ cron: '0 * * * *', timeZone: 'UTC', jitter: 0 });
    const now = Date.UTC(2030, 0, 1, 10, 30);
    const served = Date.UTC(2030, 0, 1, 12, 0);
    expect(schedule.nextBase(served, now)).toBe(Date.UTC(2030, 0, 1, 13, 0));
    expect(schedule.nextBase(null, now)).toBe(Date.UTC(2030, 0, 1, 11, 0));
  });
});
