/**
 * Jobs whose claim went unanswered (it timed out, or its connection dropped). The claim may have
 * run in Redis all the same and left this replica a lease it knows nothing of: the fire would
 * then run nowhere, and the lease would block the job until it expired. The question stays open
 * until Redis has answered which leases this replica holds for the job, in a read sent after the
 * claim (so it sees what the claim did); past the latest moment such a lease could expire there
 * is nothing left to find, and it is dropped.
 */
export class ClaimsInDoubt {
  /** name -> when the question was raised (a counter) and until when a lease may live (coordinator's clock). */
  private readonly open = new Map<string, { raised: number; until: number }>();
  private counter = 0;

  /** The claims of `names` got no answer; a lease they took lives until `until` at the latest. */
  raise(names: Iterable<string>, until: number): void {
    const raised = ++this.counter;
    for (const name of names) this.open.set(name, { raised, until: Math.max(until, this.open.get(name)?.until ?? 0) });
  }

  /** Taken just before a read of this replica's leases is sent: what it can answer. */
  ask(): number {
    return ++this.counter;
  }

  /** A read taken with `asked` returned this replica's leases of `names`: their questions raised before it are closed. */
  answered(names: Iterable<string>, asked: number): void {
    for (const name of names) {
      const question = this.open.get(name);
      if (question && question.raised < asked) this.open.delete(name);
    }
  }

  /** The jobs still in doubt at `now` (coordinator's clock); the ones whose lease must have expired are dropped. */
  pending(now: number): string[] {
    for (const [name, { until }] of this.open) if (until <= now) this.open.delete(name);
    return [...this.open.keys()];
  }
}
