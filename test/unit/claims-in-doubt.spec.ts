import { ClaimsInDoubt } from '../../lib/scheduling/claims-in-doubt';

describe('ClaimsInDoubt', () => {
  it('keeps a job in doubt until a read sent after its claim answers for it', () => {
    const doubt = new ClaimsInDoubt();
    const before = doubt.ask();
    doubt.raise(['a', 'b'], 2_000);
    // A read sent before the claim cannot tell what the claim did.
    doubt.answered(['a', 'b'], before);
    expect(doubt.pending(1_000)).toEqual(['a', 'b']);
    doubt.answered(['a'], doubt.ask());
    expect(doubt.pending(1_000)).toEqual(['b']);
  });

  it('forgets a job once a lease its claim took must have expired', () => {
    const doubt = new ClaimsInDoubt();
    doubt.raise(['a'], 2_000);
    doubt.raise(['b'], 3_000);
    expect(doubt.pending(1_999)).toEqual(['a', 'b']);
    expect(doubt.pending(2_000)).toEqual(['b']);
  });

  it('keeps the later deadline when a job is raised again', () => {
    const doubt = new ClaimsInDoubt();
    doubt.raise(['a'], 3_000);
    doubt.raise(['a'], 2_000);
    expect(doubt.pending(2_500)).toEqual(['a']);
  });
});
