import { CoordinatorClock } from '../../lib/scheduling/coordinator-clock';

describe('CoordinatorClock', () => {
  it('follows the coordinator’s clock from the least-delayed replies', () => {
    const clock = new CoordinatorClock();
    const sentAt = Date.now();
    // Redis is 50 ms ahead; the replies spent 1 to 30 ms on the way and in queue.
    for (const delay of [30, 12, 1, 8]) clock.learn(sentAt + 50 + delay, sentAt);
    expect(clock.now() - Date.now()).toBeGreaterThanOrEqual(50);
    expect(clock.now() - Date.now()).toBeLessThanOrEqual(52);
  });

  it('forgets old samples, so a clock that was corrected is followed', () => {
    const clock = new CoordinatorClock();
    const sentAt = Date.now();
    clock.learn(sentAt - 1_000, sentAt); // Redis was a second behind...
    for (let i = 0; i < 20; i++) clock.learn(sentAt + 2, sentAt); // ...then set right
    expect(Math.abs(clock.now() - Date.now() - 2)).toBeLessThanOrEqual(1);
  });
});
