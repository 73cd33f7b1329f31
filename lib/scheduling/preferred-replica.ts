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
    const score = hash32(`${replica}\n${job}`);
    if (score > bestScore || (score === bestScore && replica < best!)) {
      best = replica;
      bestScore = score;
    }
  }
  return best;
}

/** FNV-1a, then murmur3's finalizer: names that differ in one character must not score alike. */
export function hash32(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}
