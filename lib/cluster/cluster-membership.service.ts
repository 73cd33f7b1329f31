import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { Observable, Subject } from 'rxjs';
import { Coordinator } from '../coordination/coordinator.interface';
import { RESOLVED_SCHEDULER_OPTIONS } from '../scheduler.constants';
import type { ResolvedSchedulerOptions } from '../scheduler-options.resolver';
import { JobRegistry } from '../scheduling/job.registry';
import type { ClusterMember, MemberSummary, MembershipEvent } from './cluster-member.interface';
import { formatLabels } from './cluster.options';
import { HostPlacement } from './host-placement';
import type { DepartureReason, HeartbeatReply, MemberRecord, MemberRun } from './member-record.interface';
import { PlacementStrategyRegistry } from './placement-strategy.registry';
import { continuousHosts } from '../continuous/continuous.options';

const REASONS: Record<DepartureReason, string> = { shutdown: 'left at shutdown', expired: 'session TTL expired' };

/**
 * The replicas of the cluster (mgmt's live hosts): each is a member while it sends heartbeats,
 * with the labels and worker flag of its module options and the runs it reports, and leaves at
 * shutdown or when its session TTL passes without one. `members()` reads them; `members$` emits
 * each join and leave this replica sees (at its heartbeats, sent at once when the coordinator
 * announces a change), each also logged once with its reason.
 */
@Injectable()
export class ClusterMembership implements OnApplicationShutdown {
  private readonly logger = new Logger('DistributedScheduler');
  private readonly changes = new Subject<MembershipEvent>();
  private readonly placements = new Subject<void>();
  /** The members as of the latest heartbeat; null before the first. */
  private known: Map<string, MemberRecord> | null = null;
  private runs: () => readonly MemberRun[] = () => [];
  private sessionUntil = 0;
  /** Which live members may claim each job's fires (the scheduler's one check before a claim). */
  readonly placement: HostPlacement;

  /** Every join and leave, as this replica sees them. Completes when the app closes. */
  readonly members$: Observable<MembershipEvent> = this.changes.asObservable();

  /**
   * Emits after every heartbeat, once `placement` holds the choices made from its membership
   * (continuous jobs follow it). Heartbeats are sent at once when a member joins or leaves.
   */
  readonly placed$: Observable<void> = this.placements.asObservable();

  constructor(
    @Inject(RESOLVED_SCHEDULER_OPTIONS) private readonly options: ResolvedSchedulerOptions,
    private readonly coordinator: Coordinator,
    registry: JobRegistry,
    strategies: PlacementStrategyRegistry,
  ) {
    const { labels, worker } = options.cluster;
    this.placement = new HostPlacement(
      { id: options.instanceId, labels, worker },
      // A continuous job is placed as its `continuous` says: the replicas chosen run it.
      () => registry.all().map(({ definition }) => ({ name: definition.name, hosts: definition.continuous ? continuousHosts(definition.continuous) : definition.hosts })),
      strategies,
      this.logger,
    );
  }

  /** The live members, read from the coordinator now, with what each ran at its latest heartbeat. */
  async members(): Promise<ClusterMember[]> {
    const { now, members } = await this.coordinator.readMembers();
    return members
      .map((member) => ({
        id: member.id,
        labels: member.labels,
        worker: member.worker,
        heartbeatAge: Math.max(0, now - member.beatAt),
        joinedAt: new Date(member.joinedAt),
        sessionTtl: member.sessionTtl,
        runs: member.runs,
        self: member.id === this.options.instanceId,
      }))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  /** The scheduler tells what this replica runs (reported at each heartbeat). */
  reportRunsFrom(runs: () => readonly MemberRun[]): void {
    this.runs = runs;
  }

  /**
   * When this replica's session lapses, on its own clock (`Date.now()`), as of its latest
   * answered heartbeat: the time it was sent plus the session TTL. The coordinator set its expiry
   * from the time it received that heartbeat, so it cannot lapse there sooner: a replica that
   * stops what only a live member may do (a continuous job's run) before this time has stopped
   * before another member can be given it.
   */
  get sessionExpiresAt(): number {
    return this.sessionUntil;
  }

  /** The scheduler's heartbeat: renews this replica's session, follows joins and leaves, re-places jobs. */
  async heartbeat(): Promise<HeartbeatReply> {
    const sentAt = Date.now();
    const reply = await this.send(false);
    this.sessionUntil = sentAt + this.options.cluster.sessionTtl;
    // Placement first: a members$ subscriber reads the choice this membership makes.
    this.placement.update(reply.live);
    this.observe(reply);
    this.placements.next();
    return reply;
  }

  /** Takes this replica out of the live set (at shutdown); answers the members still live. */
  async leave(): Promise<HeartbeatReply> {
    const reply = await this.send(true);
    this.sessionUntil = 0;
    const self = this.known?.get(this.options.instanceId);
    this.known?.delete(this.options.instanceId);
    if (self) this.left(self, 'shutdown', Date.now());
    return reply;
  }

  /** After the scheduler's shutdown (its leave is in `beforeApplicationShutdown`). */
  onApplicationShutdown(): void {
    this.changes.complete();
    this.placements.complete();
  }

  private send(leave: boolean): Promise<HeartbeatReply> {
    const { instanceId, cluster } = this.options;
    return this.coordinator.heartbeat(instanceId, cluster.sessionTtl, leave, { labels: cluster.labels, worker: cluster.worker, runs: this.runs() });
  }

  /** Emits the differences between the members it knew and those the coordinator lists now. */
  private observe(reply: HeartbeatReply): void {
    const live = new Map(reply.live.map((member) => [member.id, member]));
    const known = this.known;
    this.known = live;
    const self = live.get(this.options.instanceId);
    if (!known) {
      // The others were there before this replica: only its own join is news.
      if (!self) return;
      const others = [...live.keys()].filter((id) => id !== self.id);
      this.logger.log(
        `Joined the cluster as "${self.id}" (${this.describe(self)}, session TTL ${self.sessionTtl} ms)` +
          (others.length > 0 ? ` with ${others.length} other member(s): ${others.join(', ')}.` : ', its only member.'),
      );
      this.changes.next({ type: 'joined', member: this.summary(self), at: new Date(reply.now) });
      return;
    }
    for (const [id, member] of live) {
      if (known.has(id)) continue;
      this.logger.log(`Member "${id}" joined the cluster (${this.describe(member)}).`);
      this.changes.next({ type: 'joined', member: this.summary(member), at: new Date(member.joinedAt) });
    }
    for (const [id, member] of known) {
      if (live.has(id)) continue;
      // The latest departure recorded for it says why; none (Redis lost it) reads as expired.
      const departure = reply.departed.filter((record) => record.id === id).sort((a, b) => b.at - a.at)[0];
      this.left(member, departure?.reason ?? 'expired', departure?.at ?? reply.now);
    }
  }

  private left(member: MemberRecord, reason: DepartureReason, at: number): void {
    const line = `Member "${member.id}" left the cluster (${REASONS[reason]}).`;
    if (reason === 'expired') this.logger.warn(line);
    else this.logger.log(line);
    this.changes.next({ type: 'left', member: this.summary(member), reason, at: new Date(at) });
  }

  private describe(member: MemberRecord): string {
    return `${formatLabels(member.labels)}; ${member.worker ? 'worker' : 'API only, runs no handler'}`;
  }

  private summary(member: MemberRecord): MemberSummary {
    return { id: member.id, labels: member.labels, worker: member.worker, self: member.id === this.options.instanceId };
  }
}
