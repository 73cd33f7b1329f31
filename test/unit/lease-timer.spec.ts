import { CoordinatorClock } from '../../lib/scheduling/coordinator-clock';
import { LeaseTimer, leaseGiveUpTime } from '../../lib/scheduling/lease-timer';

describe('LeaseTimer', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  /** A replica whose clock is `skew` ms off Redis's, learned from a reply with a 4 ms round trip. */
  function replicaClock(skew: number): CoordinatorClock {
    const clock = new CoordinatorClock();
    const sentAt = Date.now();
    clock.learn(sentAt + 2 - skew, sentAt, sentAt + 4);
    return clock;
  }

  it('gives up an adopted lease with 300 ms left before it expires, on its own timer', () => {
    const clock = replicaClock(5_000); // 5 s ahead of Redis
    const givenUp = jest.fn();
    const timer = new LeaseTimer(clock, givenUp);
    const redisNow = clock.now();
    timer.renew(redisNow, redisNow + 300); // read from a snapshot: 300 ms of the lease left
    jest.advanceTimersByTime(200);
    expect(givenUp).not.toHaveBeenCalled();
    jest.advanceTimersByTime(70); // 90 % of what was left, less the estimate's error
    expect(givenUp).toHaveBeenCalledTimes(1);
    // Local time when Redis's clock reaches the expiry: strictly later.
    expect(clock.localTimeAt(redisNow + 300) + 3).toBeGreaterThan(Date.now());
  });

  it('says a lease is expired as soon as its give-up time has passed, before its timer has had a turn', () => {
    const clock = replicaClock(0);
    const givenUp = jest.fn();
    const timer = new LeaseTimer(clock, givenUp);
    const redisNow = clock.now();
    timer.renew(redisNow, redisNow + 2_000);
    expect(timer.expired()).toBe(false);
    // A process stopped (SIGSTOP) past the lease: the wall clock moved, no timer has run yet.
    jest.setSystemTime(Date.now() + 2_500);
    expect(timer.expired()).toBe(true);
    expect(givenUp).not.toHaveBeenCalled();
    timer.renew(clock.now(), clock.now() + 2_000); // renewed: valid again
    expect(timer.expired()).toBe(false);
  });

  it('gives a fresh lease up at 90 % of lockTtl unless renewed, then counts from the renewal', () => {
    const clock = replicaClock(-5_000); // 5 s behind
    const givenUp = jest.fn();
    const timer = new LeaseTimer(clock, givenUp);
    const lockTtl = 3_000;
    timer.renew(clock.now(), clock.now() + lockTtl);
    jest.advanceTimersByTime(1_000);
    timer.renew(clock.now(), clock.now() + lockTtl); // an extension
    jest.advanceTimersByTime(2_600);
    expect(givenUp).not.toHaveBeenCalled();
    jest.advanceTimersByTime(100);
    expect(givenUp).toHaveBeenCalledTimes(1);
    expect(leaseGiveUpTime(0, lockTtl)).toBe(2_700);
  });

  it('gives up at once a lease already expired when it is learned of, and never after clear()', () => {
    const clock = replicaClock(0);
    const givenUp = jest.fn();
    const timer = new LeaseTimer(clock, givenUp);
    timer.renew(clock.now(), clock.now() - 10);
    jest.advanceTimersByTime(0);
    expect(givenUp).toHaveBeenCalledTimes(1);
    timer.renew(clock.now(), clock.now() + 1_000);
    timer.clear();
    jest.advanceTimersByTime(5_000);
    expect(givenUp).toHaveBeenCalledTimes(1);
  });
});
