/**
 * Every key and channel of one prefix. The prefix is wrapped in a hash tag, so all keys of one
 * scheduler share a Redis Cluster slot and one Lua script may touch any of them.
 */
export class RedisKeys {
  private readonly base: string;

  constructor(prefix: string) {
    this.base = `{${prefix}}`;
  }

  /** Hash of one job: definition, schedule, revision, fencing counter, manual lock, last run. */
  job(name: string): string {
    return `${this.base}:job:${name}`;
  }

  /** Hash of one job's live run leases: fencing token -> lease JSON. */
  runs(name: string): string {
    return `${this.base}:runs:${name}`;
  }

  /**
   * Hash of which replica declares which definition of one job: instance id -> definition hash,
   * as of its latest registration. Replicas no longer live are dropped at each registration of
   * the job, so a boot can tell whether a live replica still declares the definition in force.
   */
  declared(name: string): string {
    return `${this.base}:declared:${name}`;
  }

  /**
   * Hash of one job's checkpoint: `s` the state's JSON, `at` when it was saved (ms), `k` the
   * fencing token of the run that wrote it, `f` the fence (no write with a lower token is
   * taken). Clearing deletes `s`, `at` and `k` and keeps `f`. Written by checkpoint.lua, read
   * and fenced by claim.lua; never created for a job that never checkpointed.
   */
  checkpoint(name: string): string {
    return `${this.base}:checkpoint:${name}`;
  }

  /**
   * Sorted set of every run lease of every job: "name\ntoken" -> when it expires unless renewed
   * (epoch ms). A member whose time has passed is a run whose replica died without finishing it:
   * recover.lua starts its next attempt or counts it as abandoned (see common.lua).
   */
  get leases(): string {
    return `${this.base}:leases`;
  }

  /** Sorted set of every scheduled, unpaused job: name -> due time (epoch ms). */
  get due(): string {
    return `${this.base}:due`;
  }

  /**
   * Sorted set of one job's pending run requests: "name\ntrigger\nid" -> requested at (epoch ms).
   * One per job, so reading a job's triggers never reads the others', and each is capped.
   */
  triggers(name: string): string {
    return `${this.base}:triggers:${name}`;
  }

  /** Set of every job name ever registered under this prefix. */
  get names(): string {
    return `${this.base}:names`;
  }

  /** Marks a trigger request as seen, so a resent (or coalesced) request does not run twice. */
  triggerId(name: string, id: string): string {
    return `${this.base}:trigger-id:${name}:${id}`;
  }

  /** A control's request id and its answer, so a resent request changes nothing (`REQUEST_ID_TTL_MS`). */
  request(id: string | undefined): string {
    return `${this.base}:request:${id ?? ''}`;
  }

  /** Sorted set of live replicas: instance id -> last heartbeat (ms). */
  get replicas(): string {
    return `${this.base}:replicas`;
  }

  /** Sorted set of live replicas' sessions: instance id -> when it expires (last heartbeat + its session TTL, ms). */
  get sessions(): string {
    return `${this.base}:sessions`;
  }

  /** Hash of what each live replica is: instance id -> JSON `{l: labels, w: worker, n: run count, j: joined at, t: session TTL}`. */
  get members(): string {
    return `${this.base}:members`;
  }

  /** Hash of what each live replica runs, as of its latest heartbeat: instance id -> JSON `[[job, fencing token], ...]`. */
  get memberRuns(): string {
    return `${this.base}:member-runs`;
  }

  /** Sorted set of recent departures: JSON `{i: instance id, r: 'shutdown' | 'expired'}` -> when (ms), kept a minute. */
  get departed(): string {
    return `${this.base}:departed`;
  }

  /** Counter bumped by every change other than a claim; replicas poll it to catch lost messages. */
  get version(): string {
    return `${this.base}:version`;
  }

  /** When this life of the keys began (made by the first heartbeat that found it missing): changes when Redis loses its state. */
  get epoch(): string {
    return `${this.base}:epoch`;
  }

  /** Pub/sub channel of changes, triggers and cancellations. */
  get channel(): string {
    return `${this.base}:events`;
  }
}

/** A pending trigger's member in the triggers set: unique per request, parseable by Lua. */
export function triggerMember(name: string, trigger: string, id: string): string {
  return `${name}\n${trigger}\n${id}`;
}

export function parseTriggerMember(member: string): { name: string; trigger: string; id: string } {
  const [name, trigger, id] = member.split('\n');
  return { name, trigger, id };
}
