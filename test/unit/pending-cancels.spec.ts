import { PENDING_CANCEL_MS, PendingCancels } from '../../lib/scheduling/pending-cancels';

describe('PendingCancels', () => {
  it('hands a cancel to the run it names once, while it is fresh', () => {
    const cancels = new PendingCancels();
    cancels.add('job#7', 'replaced', 1_000);
    expect(cancels.take('job#8', 1_001)).toBeUndefined();
    expect(cancels.take('job#7', 1_001)).toBe('replaced');
    expect(cancels.take('job#7', 1_002)).toBeUndefined();
  });

  it('forgets a cancel whose run never showed up', () => {
    const cancels = new PendingCancels();
    cancels.add('job#7', 'stopped', 1_000);
    expect(cancels.take('job#7', 1_000 + PENDING_CANCEL_MS)).toBeUndefined();
    // Expired ones are dropped as new ones arrive, so the map does not grow with old cancels.
    cancels.add('job#8', 'stopped', 1_000);
    cancels.add('job#9', 'stopped', 1_000 + PENDING_CANCEL_MS + 1);
    expect(cancels.take('job#8', 1_000)).toBeUndefined();
    expect(cancels.take('job#9', 1_000 + PENDING_CANCEL_MS + 2)).toBe('stopped');
  });
});
