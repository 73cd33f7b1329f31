import type { Logger } from '@nestjs/common';
import type { JobHosts } from './hosts.options';
import { Labels, matchesLabels } from './cluster.options';
import type { MemberRecord } from './member-record.interface';
import type { PlacementCandidate } from './placement-strategy.interface';
import { applyStrategy } from './placement-strategies';
import type { PlacementStrategyRegistry } from './placement-strategy.registry';

/** This replica, as placement needs it when the coordinator has not listed it (yet, or any more). */
export interface PlacementSelf {
  readonly id: string;
  readonly labels: Labels;
  readonly worker: boolean;
}

/**
 * Which live members may claim each job's fires, computed by every replica from the same
 * membership (its latest heartbeat), so they agree without talking: the workers whose labels
 * match the job's `hosts.labels`, narrowed by its strategy to at most `max`. Views differ only
 * between heartbeats; the claim script still lets one replica run each fire whatever they think.
 */
export class HostPlacement {
  /** Bumped whenever any job's claimers change: claim times are then computed again. */
  generation = 0;
  private workers: PlacementCandidate[] = [];
  private workerIds: readonly string[] = [];
  /** Per job with `hosts`, its claimers (sorted ids): what this replica chose last time. */
  private readonly chosen = new Map<string, readonly string[]>();
  private readonly strategyErrors = new Set<string>();
  /**
   * Whether the choices were made from a membership the coordinator listed. Before the first
   * heartbeat this replica knows only itself: a choice made then is no `previous` (sticky would
   * keep this replica where the others, who know the real membership, chose another).
   */
  private listed = false;

  constructor(
    private readonly self: PlacementSelf,
    /** The jobs whose fires this replica may claim, with their `hosts` (the registry's). */
    private readonly jobs: () => { name: string; hosts: JobHosts | null }[],
    private readonly strategies: PlacementStrategyRegistry,
    private readonly logger: Logger,
  ) {
    this.update([], false);
  }

  /** Takes the membership of a heartbeat; true if any job's claimers changed. */
  update(live: readonly MemberRecord[], listed = true): boolean {
    const members = live.some((member) => member.id === this.self.id)
      ? live
      : // Alive by definition: listed again at its next heartbeat.
        [...live, { id: this.self.id, labels: this.self.labels, worker: this.self.worker, joinedAt: Infinity, runCount: 0 }];
    this.workers = members
      .filter((member) => member.worker)
      .map(({ id, labels, runCount, joinedAt }) => ({ id, labels, runCount, joinedAt }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    let changed = false;
    const workerIds = this.workers.map((member) => member.id);
    if (workerIds.join('\n') !== this.workerIds.join('\n')) changed = true;
    this.workerIds = workerIds;
    for (const { name, hosts } of this.jobs()) {
      if (!hosts) continue;
      const next = this.choose(name, hosts);
      if (next.join('\n') !== (this.chosen.get(name) ?? []).join('\n')) changed = true;
      this.chosen.set(name, next);
    }
    this.listed = listed;
    if (changed) this.generation++;
    return changed;
  }

  /** The live members that may claim the job's fires, sorted by id. */
  claimers(job: string): readonly string[] {
    return this.chosen.get(job) ?? this.workerIds;
  }

  /** The one check before a claim: may this replica claim the job's fires now? */
  mayClaim(job: string): boolean {
    return this.self.worker && this.claimers(job).includes(this.self.id);
  }

  private choose(job: string, hosts: JobHosts): string[] {
    const eligible = this.workers.filter((member) => matchesLabels(member.labels, hosts.labels));
    if (!hosts.strategy) return eligible.map((member) => member.id);
    const previous = this.listed ? (this.chosen.get(job) ?? []) : [];
    try {
      const chosen = applyStrategy(this.strategies.get(hosts.strategy)!, { key: job, members: eligible, previous, max: hosts.max });
      this.strategyErrors.delete(job);
      return chosen.sort();
    } catch (error) {
      // A strategy that throws keeps the choice it made last (as far as those members live).
      if (!this.strategyErrors.has(job)) {
        this.strategyErrors.add(job);
        this.logger.error(`Job "${job}": placement strategy '${hosts.strategy}' failed (${(error as Error).message}); keeping its previous choice.`);
      }
      const ids = new Set(eligible.map((member) => member.id));
      return previous.filter((id) => ids.has(id));
    }
  }
}
