import { SetMetadata } from '@nestjs/common';
import { PLACEMENT_STRATEGY_METADATA } from './cluster.constants';

/**
 * Registers a provider as a placement strategy under `name` (mgmt's `Register`): jobs then name
 * it in `hosts: { strategy: name }`. The class implements `PlacementStrategy` and is listed in
 * a module's `providers`; it is found when the first job naming a strategy is validated.
 *
 * ```ts
 * @RegisterPlacementStrategy('same-zone-first')
 * @Injectable()
 * export class SameZoneFirst implements PlacementStrategy { choose(input: PlacementInput) { ... } }
 * ```
 */
export const RegisterPlacementStrategy = (name: string): ClassDecorator => SetMetadata(PLACEMENT_STRATEGY_METADATA, name);
