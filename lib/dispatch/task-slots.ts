import type { DueEntry } from '../scheduling/due-queue';
import { DueQueue } from '../scheduling/due-queue';

/** How late after the earliest task lease of a full job would expire its waiting tasks are tried again. */
const FULL_JOB_MARGIN_MS = 5;

/**
 * The task slots of one replica (`worker: { concurrency }`) and the tasks waiting for one.
 *
 * A replica claims a task only while the tasks it runs plus its task claims in flight are under
 * its limit: the tasks found due beyond it are parked here (soonest claim time first: its
 * preferred tasks before the others') and claimed one by one as slots free up. Meanwhile the
 * other replicas, whose claim time for them comes a moment later, take them if they have room:
 * a replica at its limit leaves its tasks to the others instead of holding them.
 *
 * A task answered `busy` (its job has `concurrency` tasks running across the cluster) waits per
 * job: one is tried again when a task of that job ends here, or when the earliest lease the
 * answer named would expire (a task of the job ended elsewhere, or its replica died); a try that
 * finds its task taken by another replica hands on to the next. So a full job costs one claim per
 * task end, not one per waiting task.
 */
export class TaskSlots {
  private inFlight = 0;
  private readonly parked = new DueQueue();
  private readonly fullJobs = new Map<string, { waiting: DueEntry[]; timer?: NodeJS.Timeout }>();
  /** Entries released from a full job's wait: the next one goes if this one does not run. */
  private readonly released = new WeakSet<DueEntry>();

  constructor(
    /** This replica's `worker.concurrency`. */
    private readonly limit: number,
    /** The tasks this replica runs now. */
    private readonly running: () => number,
    /** Is this entry a task (a dispatched one or a task's retry)? */
    private readonly isTask: (entry: DueEntry) => boolean,
    /** May this replica still claim it (pending in the mirror, and the job still placed here)? */
    private readonly claimable: (entry: DueEntry) => boolean,
    /** Claims these entries now (FireClaims). */
    private readonly claim: (entries: DueEntry[]) => void,
    /** The coordinator's clock now. */
    private readonly now: () => number,
  ) {}

  private get free(): number {
    return this.limit - this.running() - this.inFlight;
  }

  /** The entries to claim now: every one that is not a task, and the tasks there are slots for; the rest wait here. */
  admit(entries: DueEntry[]): DueEntry[] {
    const admitted: DueEntry[] = [];
    for (const entry of entries) {
      if (!this.isTask(entry)) admitted.push(entry);
      else if (this.free > 0) {
        this.inFlight++;
        admitted.push(entry);
      } else this.parked.push(entry);
    }
    return admitted;
  }

  /**
   * A task claim was answered (or failed): its slot is a run now, or free again. `handOn`: the
   * task neither started here nor waits for its job (another replica took it, say); if it had
   * been released from its job's wait, the next waiting task of the job is tried.
   */
  settled(entry: DueEntry, handOn: boolean): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    if (handOn && this.released.has(entry)) this.releaseOne(entry.name);
  }

  /** A task's job has `concurrency` tasks running: the task waits for one of them to end. */
  full(entry: DueEntry, earliestExpiry: number): void {
    let job = this.fullJobs.get(entry.name);
    if (!job) this.fullJobs.set(entry.name, (job = { waiting: [] }));
    job.waiting.push(entry);
    if (!job.timer) {
      job.timer = setTimeout(() => {
        job!.timer = undefined;
        this.releaseOne(entry.name);
      }, Math.max(0, earliestExpiry + FULL_JOB_MARGIN_MS - this.now()));
      job.timer.unref();
    }
  }

  /** A run of the job ended here: a slot is free, and if it was one of the job's tasks, one of its waiting tasks is tried. */
  ended(name: string): void {
    this.releaseOne(name);
    this.pump();
  }

  /** Claims parked tasks while slots are free. */
  pump(): void {
    const entries: DueEntry[] = [];
    while (this.free - entries.length > 0 && this.parked.size > 0) {
      // The soonest one (popDue takes every entry of that time: the others go back).
      const [soonest, ...others] = this.parked.popDue(this.parked.peek()!.at);
      others.forEach((entry) => this.parked.push(entry));
      // Taken by another replica meanwhile (its claim answered here as gone, or read in a resync): dropped.
      if (this.claimable(soonest)) entries.push(soonest);
    }
    if (entries.length > 0) this.claim(entries);
  }

  /** At shutdown: nothing waits any more. */
  clear(): void {
    this.parked.clear();
    for (const job of this.fullJobs.values()) clearTimeout(job.timer);
    this.fullJobs.clear();
  }

  private releaseOne(name: string): void {
    const job = this.fullJobs.get(name);
    const entry = job?.waiting.shift();
    if (!job || !entry) return;
    if (job.waiting.length === 0) {
      clearTimeout(job.timer);
      this.fullJobs.delete(name);
    }
    const retry = { ...entry, at: Math.min(entry.at, this.now()) };
    this.released.add(retry);
    this.parked.push(retry);
    this.pump();
  }
}
