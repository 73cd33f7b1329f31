import type { PendingTrigger } from '../coordination/coordinator.interface';
import { ClaimOrder } from './claim-order';
import { taskOfTrigger } from '../dispatch/task-trigger-id';
import type { CoordinatorClock } from './coordinator-clock';
import { DueEntry, DueQueue } from './due-queue';
import { MAX_TIMER_MS, OrchestratorContext } from './orchestrator-context';

/**
 * The due-time loop of one replica: what it will claim and when (each job's fires at its claim
 * time, ClaimOrder), in a min-heap, and one timer for the earliest entry. On waking it hands
 * what is due by the coordinator's clock to `claim`; whoever gets an entry checks it still holds.
 */
export class DueLoop {
  private readonly queue = new DueQueue();
  private readonly claimOrder: ClaimOrder;
  private timer?: NodeJS.Timeout;
  private timerAt = Infinity;

  constructor(
    private readonly ctx: OrchestratorContext,
    /** Claims the entries found due (FireClaims). */
    private readonly claim: (due: DueEntry[]) => void,
  ) {
    this.claimOrder = new ClaimOrder(ctx.options.instanceId, ctx.cluster.placement);
  }

  /** The coordinator's clock as this replica knows it: every due time is on it. */
  private get clock(): CoordinatorClock {
    return this.ctx.coordinator.clock;
  }

  /** After a heartbeat: true if the members that may claim some job changed (and so claim times did). */
  setMembers(): boolean {
    return this.claimOrder.setMembers();
  }

  clear(): void {
    this.queue.clear();
  }

  /** Queues an entry as it is: a claim to retry, or one answered too early. */
  push(entry: DueEntry): void {
    this.queue.push(entry);
  }

  queueTrigger(trigger: PendingTrigger): void {
    const at = this.claimOrder.claimTime(trigger.name, trigger.requestedAt, taskOfTrigger(trigger.id));
    this.queue.push({ at, name: trigger.name, member: trigger.member });
  }

  queueDue(name: string, due: number): void {
    this.queue.push({ at: Math.max(this.claimOrder.claimTime(name, due), this.claimableFrom(name)), name, due });
  }

  /** With `initialDelay`, this replica claims none of the job's scheduled fires before then (coordinator's clock). */
  private claimableFrom(name: string): number {
    const delay = this.ctx.registry.get(name)?.definition.initialDelay ?? 0;
    const remaining = this.ctx.life.startedAt + delay - Date.now();
    return delay > 0 && remaining > 0 ? this.clock.now() + remaining : 0;
  }

  arm(): void {
    // Before the first reply, this replica's clock may be seconds off Redis's: nothing is claimed.
    if (this.ctx.life.stopping || !this.clock.known) return;
    const next = this.queue.peek();
    if (!next || (this.timer && this.timerAt <= next.at)) return;
    clearTimeout(this.timer);
    this.timerAt = next.at;
    this.timer = setTimeout(() => this.wake(), Math.min(MAX_TIMER_MS, Math.max(0, next.at - this.clock.now())));
  }

  disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private wake(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    if (this.ctx.life.stopping || !this.ctx.coordinator.isAvailable()) return;
    // A timer may fire a little early: popDue only takes what is due by the clock. A job's
    // `hosts` (or `worker: false`) may leave this replica out: it queues the job again if chosen.
    this.claim(this.queue.popDue(this.clock.now()).filter((entry) => this.ctx.cluster.placement.mayClaim(entry.name)));
    this.arm();
  }
}
