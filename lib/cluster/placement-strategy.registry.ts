import { Injectable } from '@nestjs/common';
import { DiscoveryService, Reflector } from '@nestjs/core';
import { DuplicatePlacementStrategyError, InvalidPlacementStrategyError } from '../errors';
import { PLACEMENT_STRATEGY_METADATA, STRATEGY_NAME_PATTERN } from './cluster.constants';
import { BUILT_IN_STRATEGIES } from './placement-strategies';
import type { PlacementStrategy } from './placement-strategy.interface';

/**
 * The placement strategies by name (mgmt's `Register` / `StrategyKind`): the built-ins
 * (`spread`, `sticky`, `random`), the providers decorated with `@RegisterPlacementStrategy`, and
 * those `register`ed before the app bootstraps. Decorated providers are found when a strategy is
 * first looked up (the job explorer's validation, at module init, when every provider exists).
 * One registry per app: nothing is kept between apps.
 */
@Injectable()
export class PlacementStrategyRegistry {
  private readonly strategies = new Map<string, { strategy: PlacementStrategy; source: string }>(
    Object.entries(BUILT_IN_STRATEGIES).map(([name, strategy]) => [name, { strategy, source: 'built-in' }]),
  );
  private discovered = false;

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly reflector: Reflector,
  ) {}

  /** Registers a strategy under a name no other strategy has. */
  register(name: string, strategy: PlacementStrategy, source = 'PlacementStrategyRegistry.register'): void {
    if (typeof name !== 'string' || !STRATEGY_NAME_PATTERN.test(name)) {
      throw new InvalidPlacementStrategyError(name, source, 'expected a name of letters, digits, ".", "_", ":" or "-", at most 64 characters');
    }
    if (typeof strategy?.choose !== 'function') {
      throw new InvalidPlacementStrategyError(name, source, 'expected an object with a choose(input) method (PlacementStrategy)');
    }
    const existing = this.strategies.get(name);
    if (existing) throw new DuplicatePlacementStrategyError(name, existing.source, source);
    this.strategies.set(name, { strategy, source });
  }

  get(name: string): PlacementStrategy | undefined {
    this.discover();
    return this.strategies.get(name)?.strategy;
  }

  names(): string[] {
    this.discover();
    return [...this.strategies.keys()];
  }

  private discover(): void {
    if (this.discovered) return;
    this.discovered = true;
    for (const wrapper of this.discovery.getProviders()) {
      const { instance, metatype } = wrapper;
      if (!instance || !metatype) continue;
      const name = this.reflector.get<string | undefined>(PLACEMENT_STRATEGY_METADATA, metatype);
      if (name !== undefined) this.register(name, instance as PlacementStrategy, `@RegisterPlacementStrategy on ${metatype.name}`);
    }
  }
}
