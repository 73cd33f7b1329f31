import { preferredReplica } from '../../lib/scheduling/preferred-replica';

describe('preferredReplica', () => {
  const replicas = ['api-1', 'api-2', 'api-3'];
  const jobs = Array.from({ length: 3000 }, (_, i) => `job-${i}`);

  it('gives every replica the same answer whatever the order it lists the replicas in', () => {
    for (const job of jobs.slice(0, 100)) {
      expect(preferredReplica(job, replicas)).toBe(preferredReplica(job, [...replicas].reverse()));
    }
  });

  it('spreads jobs evenly over the replicas', () => {
    const counts = new Map<string, number>();
    for (const job of jobs) counts.set(preferredReplica(job, replicas)!, (counts.get(preferredReplica(job, replicas)!) ?? 0) + 1);
    for (const replica of replicas) expect(counts.get(replica)).toBeGreaterThan(850);
  });

  it('spreads a handful of similarly named jobs too', () => {
    const few = ['replica-1', 'replica-2', 'replica-3'];
    const owners = new Set(Array.from({ length: 10 }, (_, i) => preferredReplica(`job-${i}`, few)));
    expect(owners.size).toBe(3);
  });

  it('moves only the jobs of a replica that leaves', () => {
    for (const job of jobs) {
      const before = preferredReplica(job, replicas);
      const after = preferredReplica(job, ['api-1', 'api-3']);
      if (before !== 'api-2') expect(after).toBe(before);
    }
  });
});
