import { hash32 } from '../scheduling/preferred-replica';
import type { PlacementCandidate, PlacementInput, PlacementStrategy } from './placement-strategy.interface';

const byId = (a: PlacementCandidate, b: PlacementCandidate) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** Even by load: the members running the fewest runs first, ties by id. */
export const spreadStrategy: PlacementStrategy = {
  choose: ({ members, max }) => [...members].sort((a, b) => a.runCount - b.runCount || byId(a, b)).slice(0, max).map((member) => member.id),
};

/**
 * Keeps the members chosen last time while they are eligible, and fills the places left with the
 * oldest members (joined first, ties by id). A replica that starts later, knowing no previous
 * choice, still finds the same ones: they are the oldest. `max: 1` is leader election.
 */
export const stickyStrategy: PlacementStrategy = {
  choose: ({ members, previous, max }) => {
    const eligible = new Set(members.map((member) => member.id));
    const kept = previous.filter((id) => eligible.has(id)).slice(0, max);
    const oldest = [...members].sort((a, b) => a.joinedAt - b.joinedAt || byId(a, b));
    for (const member of oldest) {
      if (kept.length >= max) break;
      if (!kept.includes(member.id)) kept.push(member.id);
    }
    return kept;
  },
};

/**
 * A random draw seeded by the key (rendezvous hashing of key and member): uniform over keys, the
 * same on every replica, and a member leaving moves only the keys it held.
 */
export const randomStrategy: PlacementStrategy = {
  choose: ({ key, members, max }) =>
    members
      .map((member) => ({ id: member.id, score: hash32(`${member.id}\n${key}`) }))
      .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1))
      .slice(0, max)
      .map((member) => member.id),
};

export const BUILT_IN_STRATEGIES: Readonly<Record<string, PlacementStrategy>> = {
  spread: spreadStrategy,
  sticky: stickyStrategy,
  random: randomStrategy,
};

/** A strategy's answer made safe: only candidates, each once, at most `max`, in its order. */
export function applyStrategy(strategy: PlacementStrategy, input: PlacementInput): string[] {
  const eligible = new Set(input.members.map((member) => member.id));
  const chosen: string[] = [];
  const answer = strategy.choose(input);
  if (!Array.isArray(answer)) throw new TypeError(`a placement strategy must return an array of member ids, got ${typeof answer}`);
  for (const id of answer) {
    if (chosen.length >= input.max) break;
    if (typeof id === 'string' && eligible.has(id) && !chosen.includes(id)) chosen.push(id);
  }
  return chosen;
}
