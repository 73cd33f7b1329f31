/**
 * Which live replica claims a job's fires first (rendezvous hashing): every replica computes the
 * same answer from the same set, jobs spread evenly, and when a replica joins or leaves only
 * the jobs it gains or loses move. It is a preference, not a lock: the others claim a moment
 * later, and the claim script still lets exactly one of them run each fire.
 */
export function preferredReplica(job: string, replicas: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = -1;
  for (const replica of replicas) {
    const score = fnv1a(`${replica}\n${job}`);
    if (score > bestScore || (score === bestScore && replica < best!)) {
      best = replica;
      bestScore = score;
    }
  }
  return best;
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}
