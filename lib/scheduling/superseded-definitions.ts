import type { Logger } from '@nestjs/common';
import type { Coordinator, RegistrationOutcome } from '../coordination/coordinator.interface';
import { sharedDefinition } from './job-definition';
import type { JobRegistry } from './job.registry';
import { registration } from './state-restore';

type Superseded = Extract<RegistrationOutcome, { other: unknown }>;

/**
 * The jobs whose definition in this replica's code the coordinator answered `superseded` at
 * boot: a boot replaced it before, and a live replica declares the one in force. This replica
 * runs the definition in force, says so once per job (and definition in force), and offers its
 * own again whenever the live members change: once no live replica declares the one in force
 * (the last one left, or its heartbeat expired: a rollback has completed), the offer puts this
 * replica's definition back in force.
 */
export class SupersededDefinitions {
  /** Superseded jobs: name -> the definition in force (JSON) the coordinator answered with. */
  private readonly jobs = new Map<string, string>();
  /** The live members of the latest offer (sorted); null: offer at the next heartbeat. */
  private offeredTo: string | null = null;
  private offering = false;

  /**
   * @param warned the orchestrator's record of the definition in force it warned of, per job: a
   *   superseded job is explained here, not warned of again as a definition that differs.
   * @param active false once the replica is stopping: nothing is offered then.
   */
  constructor(
    private readonly coordinator: Coordinator,
    private readonly registry: JobRegistry,
    private readonly instanceId: string,
    private readonly logger: Logger,
    private readonly warned: Map<string, string>,
    private readonly active: () => boolean,
  ) {}

  /** The jobs offered again at the next change of the live members. */
  names(): string[] {
    return [...this.jobs.keys()];
  }

  /**
   * Takes the outcomes of a boot registration (this replica's, or an offer of this class). Any
   * outcome but `superseded` ends the job's offers: `replaced` (back in force), `unchanged`
   * (another replica's offer put it back), `differs` or `missing` (the coordinator no longer
   * remembers it as superseded, or lost the job: this replica follows what is in force).
   */
  note(outcomes: readonly RegistrationOutcome[]): void {
    for (const outcome of outcomes) {
      if (outcome.outcome === 'superseded') this.superseded(outcome);
      else if (this.jobs.delete(outcome.name) && outcome.outcome === 'replaced') {
        this.logger.warn(
          `Job "${outcome.name}": no live replica declares the definition in force, ${JSON.stringify(outcome.other)}, registered by ` +
            `"${outcome.otherBy}", any more: this instance's ${this.mine(outcome.name)} is back in force (a rollback).`,
        );
      }
    }
  }

  /** The live members, from every heartbeat: when they changed since the latest offer, offers again. */
  membersSeen(members: readonly string[]): void {
    if (this.jobs.size === 0 || this.offering || !this.active() || !this.coordinator.isAvailable()) return;
    const key = [...members].sort().join('\n');
    if (key === this.offeredTo) return;
    this.offeredTo = key;
    void this.offer();
  }

  private async offer(): Promise<void> {
    this.offering = true;
    try {
      const jobs = this.names()
        .filter((name) => this.registry.has(name))
        .map((name) => registration(this.registry.get(name)!, undefined, this.coordinator.clock.latest()));
      if (jobs.length > 0 && this.active()) this.note(await this.coordinator.register(jobs, 'offer', this.instanceId));
    } catch (error) {
      if (!this.active()) return;
      // Offered again at the next heartbeat.
      this.offeredTo = null;
      this.logger.warn(`Could not offer this instance's superseded definitions again (${this.names().join(', ')}): ${(error as Error).message}`);
    } finally {
      this.offering = false;
    }
  }

  private superseded({ name, other, otherBy }: Superseded): void {
    const theirs = JSON.stringify(other);
    // Explained here: the orchestrator does not warn of it again as a definition that differs.
    this.warned.set(name, theirs);
    if (this.jobs.get(name) === theirs) return;
    this.jobs.set(name, theirs);
    this.logger.warn(
      `Job "${name}": this instance's definition ${this.mine(name)} was replaced by the one in force, ${theirs}, registered by ` +
        `"${otherBy}", which a live replica declares: an old definition does not take the cluster back. This instance runs ` +
        'the definition in force; its own comes back only once no live replica declares that one (a rollback completed).',
    );
  }

  private mine(name: string): string {
    const job = this.registry.get(name);
    return job ? JSON.stringify(sharedDefinition(job.definition)) : '(not in this instance)';
  }
}
