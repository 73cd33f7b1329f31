export { ClusterMembership } from './cluster-membership.service';
export type { ClusterMember, MemberSummary, MembershipEvent } from './cluster-member.interface';
export type { DepartureReason, MemberRun } from './member-record.interface';
export type { Labels, WorkerOptions } from './cluster.options';
export type { JobHostsOptions } from './hosts.options';
export type { PlacementCandidate, PlacementInput, PlacementStrategy } from './placement-strategy.interface';
export { PlacementStrategyRegistry } from './placement-strategy.registry';
export { RegisterPlacementStrategy } from './placement-strategy.decorator';
export { randomStrategy, spreadStrategy, stickyStrategy } from './placement-strategies';
