/** One run a member reports in its heartbeat. */
export interface MemberRun {
  /** The job's name. */
  readonly name: string;
  readonly fencingToken: number;
}

/** What a replica tells the coordinator about itself at each heartbeat. */
export interface MemberReport {
  readonly labels: Readonly<Record<string, string>>;
  /** False for an API-only replica, which never claims fires. */
  readonly worker: boolean;
  /** The runs it has started and not yet ended. */
  readonly runs: readonly MemberRun[];
}

/** A live member as the coordinator keeps it (the runs themselves are read apart, by `readMembers`). */
export interface MemberRecord {
  readonly id: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly worker: boolean;
  /** When it joined, on the coordinator's clock (epoch ms). */
  readonly joinedAt: number;
  /** Its latest heartbeat, on the coordinator's clock (epoch ms). */
  readonly beatAt: number;
  /** Its session TTL (ms): it leaves the live set this long after its latest heartbeat. */
  readonly sessionTtl: number;
  /** How many runs its latest heartbeat reported. */
  readonly runCount: number;
}

/** Why a member left the live set. */
export type DepartureReason = 'shutdown' | 'expired';

/** A member that left recently (kept `DEPARTURES_KEPT_MS`), so every replica learns why. */
export interface MemberDeparture {
  readonly id: string;
  /** When it left, on the coordinator's clock (epoch ms). */
  readonly at: number;
  readonly reason: DepartureReason;
}

/** What a heartbeat answers: the change version, the live set, and what the membership is. */
export interface HeartbeatReply {
  readonly version: string;
  /** The live members' ids. */
  readonly members: string[];
  readonly epoch: string;
  /** The coordinator's clock when it answered. */
  readonly now: number;
  readonly live: MemberRecord[];
  readonly departed: MemberDeparture[];
}

/** Every live member with what it runs, as `readMembers` reads it. */
export interface MembersReading {
  readonly now: number;
  readonly members: (MemberRecord & { readonly runs: readonly MemberRun[] })[];
}
