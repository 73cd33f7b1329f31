import type { Labels } from './cluster.options';

/** A live member a strategy may choose. */
export interface PlacementCandidate {
  readonly id: string;
  readonly labels: Labels;
  /** How many runs its latest heartbeat reported: the load `spread` balances. */
  readonly runCount: number;
  /** When it joined, on the coordinator's clock (epoch ms): `sticky` fills from the oldest. */
  readonly joinedAt: number;
}

/**
 * What a strategy chooses from. Every replica gives the same input for the same membership, so
 * a strategy that is a pure function of it (no clock, no `Math.random`) makes them all agree.
 */
export interface PlacementInput {
  /** What is placed, such as a job's name: the seed of anything a strategy draws at random. */
  readonly key: string;
  /** The eligible live members (workers whose labels match), sorted by id. */
  readonly members: readonly PlacementCandidate[];
  /** What this replica chose last time for the same key (empty at first): `sticky` keeps them. */
  readonly previous: readonly string[];
  /** At most this many members are chosen (mgmt's MaxCount). */
  readonly max: number;
}

/**
 * Chooses, among the eligible members, the ones that run something (mgmt's Strategy). Register
 * one by name with `@RegisterPlacementStrategy('name')` on a provider implementing it, then use
 * it in `@DistributedJob({ hosts: { strategy: 'name' } })`. Ids it returns that are not among
 * the candidates, duplicates and any beyond `max` are dropped.
 */
export interface PlacementStrategy {
  choose(input: PlacementInput): readonly string[];
}
