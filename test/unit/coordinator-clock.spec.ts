import { CoordinatorClock } from '../../lib/scheduling/coordinator-clock';

/** A clock whose local time the test sets. */
function manualClock(start = 1_000_000): { clock: CoordinatorClock; local: { now: number } } {
  const local = { now: start };
  return { clock: new CoordinatorClock(false, () => local.now), local };
}

describe('CoordinatorClock', () => {
  it('follows the coordinator’s clock from the reply with the shortest round trip', () => {
    const { clock, local } = manualClock();
    // Redis is 5 s ahead; replies took 2 to 60 ms, the reading somewhere in between.
    for (const [roundTrip, readAfter] of [[60, 50], [12, 2], [2, 1], [30, 29]]) {
      const sentAt = local.now;
      clock.learn(sentAt + 5_000 + readAfter, sentAt, sentAt + roundTrip);
      local.now += 100;
    }
    // The 2 ms sample wins: the estimate is within its half round trip (+1 ms of TIME's resolution).
    expect(Math.abs(clock.now() - (local.now + 5_000))).toBeLessThanOrEqual(1);
    expect(clock.latest()).toBeGreaterThanOrEqual(local.now + 5_000 + 1);
    expect(clock.localTimeAt(local.now + 5_000 + 500)).toBeLessThanOrEqual(local.now + 500);
  });

  it('is not known, and says so, before any reply', async () => {
    const { clock, local } = manualClock();
    expect(clock.known).toBe(false);
    let known = false;
    const waiting = clock.whenKnown().then(() => (known = true));
    await Promise.resolve();
    expect(known).toBe(false);
    clock.learn(local.now - 5_000, local.now, local.now + 1); // Redis 5 s behind
    await waiting;
    expect(clock.known).toBe(true);
    expect(Math.abs(clock.now() - (local.now - 5_000))).toBeLessThanOrEqual(1);
  });

  it('forgets old samples, so a clock that was corrected is followed', () => {
    const { clock, local } = manualClock();
    clock.learn(local.now - 1_000, local.now, local.now); // Redis was a second behind...
    for (let i = 0; i < 20; i++) clock.learn(local.now + 2, local.now, local.now + 4); // ...then set right
    expect(Math.abs(clock.now() - local.now)).toBeLessThanOrEqual(1);
  });

  it('is exact for a coordinator that reads this process’s clock', () => {
    const clock = new CoordinatorClock(true, () => 42);
    expect(clock.known).toBe(true);
    expect([clock.now(), clock.latest(), clock.localTimeAt(42)]).toEqual([42, 42, 42]);
  });
});
