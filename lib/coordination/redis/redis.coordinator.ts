import { Logger } from '@nestjs/common';
import { Cluster, Redis } from 'ioredis';
import { BehaviorSubject, Observable, Subject } from 'rxjs';
import type { OverlapPolicy } from '../../scheduling/distributed-job-options.interface';
import type { JobTrigger } from '../../scheduling/job-context.interface';
import type { SharedJobDefinition } from '../../scheduling/job-definition';
import {
  ClaimRequest,
  ClaimResult,
  CoordinationEvent,
  CorruptKey,
  Coordinator,
  ExportedJob,
  ExportedState,
  JobRestore,
  JobRecord,
  JobRegistration,
  JobsSnapshot,
  JobState,
  LastRun,
  LockOutcome,
  MAX_PENDING_TRIGGERS,
  OwnLease,
  PENDING_TRIGGERS_TTL_MS,
  PendingRetry,
  PendingTrigger,
  REQUEST_ID_TTL_MS,
  RegistrationMode,
  RegistrationOutcome,
  RescheduleRequest,
  RestoreOutcome,
  RunLease,
  RunReport,
  RunStatus,
  SlotHolder,
  SlotOutcome,
  TaskDispatchRequest,
  TaskStopOutcome,
  TriggerOutcome,
  ExpiredLease,
  ExpiredLeases,
  RecoveryOutcome,
  RecoveryRequest,
  RetryMatch,
} from '../coordinator.interface';
import { ClaimInterruptedError } from '../claim-interrupted.error';
import { describeRedisTarget, openRedis, OutageLog, RedisHandle } from './redis-connection';
import { parseTriggerMember, RedisKeys, triggerMember } from './redis-keys';
import { taskTriggerId } from '../../dispatch/task-trigger-id';
import { loadScripts, RedisScript } from './redis-script';
import type { RedisConnection } from '../../scheduler-options.interface';
import { CorruptJobError } from '../../errors/corrupt-job.error';
import { corruptKeyOf, jobHashProblem, parseJson, runsHashProblem, wrongTypeProblem } from './corrupt-key';
import { CoordinatorClock } from '../../scheduling/coordinator-clock';
import { parseRetryId } from '../../retry/retry-id';
import { DEPARTURES_KEPT_MS, LEGACY_MEMBER_TTL_MS } from '../../cluster/cluster.constants';
import { decodeDeparture, decodeMember, decodeRuns, encodeReport, NO_REPORT } from '../../cluster/member-codec';
import type { HeartbeatReply, MemberDeparture, MemberRecord, MemberReport, MembersReading } from '../../cluster/member-record.interface';
import type { CheckpointSaveOutcome, StoredCheckpoint } from '../../checkpoint/checkpoint.interface';

type Reply = string | number | null | Reply[];

/** Jobs per claim or register script call: large enough for one round trip, small enough not to stall Redis. */
const BATCH = 500;
/** Jobs read per pipeline when exporting every job's state for a snapshot. */
const EXPORT_BATCH = 1_000;

/**
 * Coordinates replicas on Redis: all shared state lives in the keys of `RedisKeys`, and every
 * change is one Lua script, so concurrent replicas never see half a change.
 */
export class RedisCoordinator extends Coordinator {
  readonly kind = 'redis' as const;
  /** Learns Redis's clock from every reply that carries it (heartbeat, snapshot, claim, describe). */
  readonly clock = new CoordinatorClock();
  private readonly logger = new Logger('DistributedScheduler');
  private readonly keys: RedisKeys;
  private readonly scripts = loadScripts();
  private readonly handle: RedisHandle;
  private subscriber: Redis | Cluster | null = null;
  private readonly outage: OutageLog;
  private readonly events = new Subject<CoordinationEvent>();
  private readonly available = new BehaviorSubject(false);
  private readonly detach: (() => void)[] = [];
  private closing = false;

  readonly events$: Observable<CoordinationEvent> = this.events.asObservable();
  readonly available$: Observable<boolean> = this.available.asObservable();

  /**
   * @param pendingTriggersTtl how long a job's pending triggers are kept when no replica claims
   *   them (no live replica declares the job); each accepted trigger starts it over.
   */
  constructor(
    connection: RedisConnection,
    keyPrefix: string,
    private readonly pendingTriggersTtl: number = PENDING_TRIGGERS_TTL_MS,
  ) {
    super();
    this.keys = new RedisKeys(keyPrefix);
    this.handle = openRedis(connection);
    this.outage = new OutageLog(this.logger, describeRedisTarget(this.handle.client));
  }

  get client(): Redis | Cluster {
    return this.handle.client;
  }

  override jobKey(name: string): string {
    return this.keys.job(name);
  }

  describeTarget(): string {
    return describeRedisTarget(this.handle.client);
  }

  isAvailable(): boolean {
    return this.available.value;
  }

  override isUnreachableError(error: unknown): boolean {
    return !this.isAvailable() || isConnectionError(error);
  }

  async connect(): Promise<void> {
    const { client } = this.handle;
    // The subscriber is our own connection (a client in subscriber mode cannot run scripts).
    // Owned clients are created lazily (nothing connects before the scheduler starts), and an
    // app's client may be lazy too: connect it, and never let the subscriber wait for a command.
    const subscriber = client instanceof Cluster ? client.duplicate(undefined, { lazyConnect: false }) : client.duplicate({ lazyConnect: false });
    this.subscriber = subscriber;
    // ioredis subscribes again by itself after a reconnection, but only to channels whose first
    // subscription succeeded, and with no offline queue that one must wait for the connection.
    let subscribed = false;
    const update = () => {
      const up = client.status === 'ready' && subscriber.status === 'ready' && subscribed;
      if (up === this.available.value) return;
      if (up) this.outage.recovered();
      this.available.next(up);
    };
    const onError = (error: Error) => {
      this.outage.failed(error);
      update();
    };
    const onClose = () => {
      if (this.closing) return;
      this.outage.failed(new Error('connection closed'));
      update();
    };
    const onSubscriberReady = () => {
      if (subscribed) return update();
      subscriber.subscribe(this.keys.channel).then(() => {
        subscribed = true;
        update();
      }, onError);
    };
    subscriber.on('ready', onSubscriberReady);
    subscriber.on('message', (_channel: string, message: string) => this.onMessage(message));
    client.on('ready', update);
    for (const connection of [client, subscriber]) {
      connection.on('error', onError);
      connection.on('close', onClose);
      connection.on('end', onClose);
    }
    // The subscriber is ours and is closed with its listeners; the client may be the app's.
    this.detach.push(() => {
      client.off('ready', update);
      client.off('error', onError);
      client.off('close', onClose);
      client.off('end', onClose);
    });
    if (subscriber.status === 'ready') onSubscriberReady();
    if (client.status === 'wait') client.connect().catch(() => undefined); // failures arrive as 'error' events
    update();
  }

  async close(): Promise<void> {
    this.closing = true;
    this.detach.splice(0).forEach((off) => off());
    this.available.next(false);
    this.events.complete();
    this.available.complete();
    await this.subscriber?.quit().catch(() => this.subscriber?.disconnect());
    if (this.handle.owned) await this.handle.client.quit().catch(() => this.handle.client.disconnect());
  }

  async ping(): Promise<void> {
    await this.handle.client.ping();
  }

  async register(jobs: JobRegistration[], mode: RegistrationMode, instanceId: string): Promise<RegistrationOutcome[]> {
    const outcomes: RegistrationOutcome[] = [];
    for (let i = 0; i < jobs.length; i += BATCH) {
      const batch = jobs.slice(i, i + BATCH);
      const keys = [this.keys.names, this.keys.due, this.keys.version, this.keys.replicas, ...batch.flatMap((job) => [this.keys.job(job.name), this.keys.declared(job.name)])];
      const args: (string | number)[] = [instanceId, mode, this.keys.channel];
      for (const job of batch) {
        const { definition, first } = job;
        const runtime = job.runtime ?? definition;
        args.push(
          job.name,
          JSON.stringify(definition),
          job.definitionHash,
          JSON.stringify(runtime.spec),
          definition.overlap,
          runtime.paused ? '1' : '0',
          first?.base ?? '',
          first?.due ?? '',
        );
      }
      const replies = await this.scripts.register.run<string[][]>(this.client, keys, args);
      replies.forEach(([outcome, other, otherBy], index) => {
        const name = batch[index].name;
        if (outcome === 'passed') return void outcomes.push({ name, outcome, now: Number(other) });
        if (outcome === 'created' || outcome === 'unchanged' || outcome === 'missing') return void outcomes.push({ name, outcome });
        if (outcome === 'corrupt') return void outcomes.push({ name, outcome, key: other, problem: otherBy });
        const stored = parseJson<SharedJobDefinition>(other);
        // A stored definition that is not JSON is reported by the snapshot that follows.
        if (stored === undefined) return void outcomes.push({ name, outcome: 'corrupt', key: this.keys.job(name), problem: `its field "def" is not JSON: ${JSON.stringify(other.slice(0, 40))}` });
        outcomes.push({ name, outcome: outcome as 'replaced' | 'differs' | 'superseded', other: stored, otherBy });
      });
    }
    return outcomes;
  }

  async snapshot(names: string[], instanceId: string): Promise<JobsSnapshot> {
    // In batches, so a snapshot of thousands of jobs never holds Redis for long; each job is read whole in one.
    const jobs: (string | string[])[][] = [];
    const triggerReply: string[] = [];
    for (let i = 0; i < names.length; i += BATCH) {
      const batch = names.slice(i, i + BATCH);
      const keys = [this.keys.due, ...batch.flatMap((name) => [this.keys.job(name), this.keys.runs(name), this.keys.triggers(name)])];
      const sentAt = Date.now();
      const [triggers, states, now] = await this.scripts.snapshot.run<[string[], (string | string[])[][], number]>(this.client, keys, [instanceId, ...batch]);
      this.clock.learn(now, sentAt);
      triggerReply.push(...triggers);
      jobs.push(...states);
    }
    const states: JobState[] = [];
    const missing: string[] = [];
    const corrupt: CorruptKey[] = [];
    const ownLeases: OwnLease[] = [];
    jobs.forEach((fields, index) => {
      const name = names[index];
      if (fields.length === 0) return void missing.push(name);
      if (fields[0] === 'corrupt') return void corrupt.push({ name, key: String(fields[1]), problem: String(fields[2]) });
      const [rev, spec, overlap, paused, base, due, definition, definedBy] = fields as string[];
      const own = fields[8] as string[];
      // Lua checked the types, numbers and leases; the JSON that only Node reads is checked here.
      const parsedSpec = parseJson<JobState['spec']>(spec);
      const parsedDefinition = parseJson<SharedJobDefinition>(definition);
      const bad = corruptKeyOf(name, this.keys.job(name), { spec: [spec, parsedSpec], def: [definition, parsedDefinition] });
      if (bad) return void corrupt.push(bad);
      states.push({
        name,
        rev: Number(rev),
        spec: parsedSpec!,
        overlap: overlap as OverlapPolicy,
        paused: paused === '1',
        base: base === '' ? null : Number(base),
        due: due === '' ? null : Number(due),
        definition: parsedDefinition!,
        definedBy,
      });
      for (let i = 0; i < own.length; i += 2) {
        const lease = JSON.parse(own[i + 1]) as LeaseJson;
        ownLeases.push({
          name,
          fencingToken: Number(own[i]),
          scheduledAt: lease.s,
          startedAt: lease.t,
          expiresAt: lease.e,
          trigger: lease.g,
          taskId: lease.x,
          ...(lease.c === 1 ? { catchUp: true } : {}),
          ...(lease.a !== undefined ? { attempt: lease.a, firstFencingToken: lease.o } : {}),
        });
      }
    });
    const triggers: PendingTrigger[] = [];
    for (let i = 0; i < triggerReply.length; i += 2) {
      const { name, trigger, id } = parseTriggerMember(triggerReply[i]);
      triggers.push({ name, member: triggerReply[i], id, trigger: trigger as JobTrigger, requestedAt: Number(triggerReply[i + 1]) });
    }
    return { states, missing, corrupt, triggers, ownLeases };
  }

  async heartbeat(instanceId: string, sessionTtl: number, leave = false, report: MemberReport = NO_REPORT): Promise<HeartbeatReply> {
    const sentAt = Date.now();
    const { info, runs } = encodeReport(report);
    const [version, members, epoch, now, live, departed] = await this.scripts.heartbeat.run<[string, string[], string, number, string[], string[]]>(
      this.client,
      [this.keys.replicas, this.keys.version, this.keys.epoch, this.keys.sessions, this.keys.members, this.keys.memberRuns, this.keys.departed],
      [instanceId, sessionTtl, leave ? 'leave' : 'beat', this.keys.channel, info, runs, DEPARTURES_KEPT_MS, LEGACY_MEMBER_TTL_MS],
    );
    this.clock.learn(now, sentAt);
    const records: MemberRecord[] = [];
    for (let i = 0; i < live.length; i += 3) records.push(decodeMember(live[i], Number(live[i + 1]), live[i + 2], LEGACY_MEMBER_TTL_MS));
    const departures: MemberDeparture[] = [];
    for (let i = 0; i < departed.length; i += 2) {
      const departure = decodeDeparture(departed[i], Number(departed[i + 1]));
      if (departure) departures.push(departure);
    }
    return { version, members, epoch, now, live: records, departed: departures };
  }

  async readMembers(): Promise<MembersReading> {
    const read = this.client.pipeline();
    read.zrange(this.keys.replicas, 0, -1, 'WITHSCORES');
    read.zrange(this.keys.sessions, 0, -1, 'WITHSCORES');
    read.hgetall(this.keys.members);
    read.hgetall(this.keys.memberRuns);
    read.time();
    const sentAt = Date.now();
    const replies = (await read.exec()) as [Error | null, unknown][];
    const failed = replies.find(([error]) => error);
    if (failed) throw failed[0];
    const [beats, sessions, infos, runs, time] = replies.map(([, value]) => value) as [string[], string[], Record<string, string>, Record<string, string>, [string, string]];
    const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
    this.clock.learn(now, sentAt);
    const expiries = new Map<string, number>();
    for (let i = 0; i < sessions.length; i += 2) expiries.set(sessions[i], Number(sessions[i + 1]));
    const members: MembersReading['members'] = [];
    for (let i = 0; i < beats.length; i += 2) {
      const id = beats[i];
      const beatAt = Number(beats[i + 1]);
      // As heartbeat.lua would at its next call: a lapsed session is no longer a member.
      const expiresAt = expiries.get(id) ?? beatAt + LEGACY_MEMBER_TTL_MS;
      if (expiresAt <= now) continue;
      members.push({ ...decodeMember(id, beatAt, infos[id], LEGACY_MEMBER_TTL_MS), runs: decodeRuns(runs[id]) });
    }
    return { now, members };
  }

  async claim(requests: ClaimRequest[], instanceId: string, lockTtl: number): Promise<ClaimResult[]> {
    const results: ClaimResult[] = [];
    for (let i = 0; i < requests.length; i += BATCH) {
      const batch = requests.slice(i, i + BATCH);
      const keys = [this.keys.due, this.keys.leases];
      const args: (string | number)[] = [instanceId, lockTtl, this.keys.channel];
      for (const request of batch) {
        keys.push(this.keys.job(request.name), this.keys.runs(request.name), this.keys.triggers(request.name), this.keys.checkpoint(request.name));
        args.push(
          request.name,
          request.member === undefined ? 'due' : 'trigger',
          request.member ?? request.due!,
          request.rev,
          request.next?.base ?? '',
          request.next?.due ?? '',
          request.threshold ?? '',
          request.concurrency ?? '',
          ...missedArgs(request),
        );
      }
      let replies: Reply[][];
      const sentAt = Date.now();
      try {
        // Every claim teaches the clock, lost ones too: a replica whose clock is behind may never win one.
        const [now, answered] = await this.scripts.claim.run<[number, Reply[][]]>(this.client, keys, args);
        this.clock.learn(now, sentAt);
        replies = answered;
      } catch (error) {
        // The batches before this one have claimed: their results must reach the caller.
        if (results.length === 0) throw error;
        throw new ClaimInterruptedError(results, error);
      }
      results.push(...replies.map(toClaimResult));
    }
    return results;
  }

  async extend(leases: { name: string; fencingToken: number }[], lockTtl: number): Promise<(boolean | CorruptKey)[]> {
    if (leases.length === 0) return [];
    const keys = [this.keys.leases, ...leases.map((lease) => this.keys.runs(lease.name))];
    const replies = await this.scripts.extend.run<(number | string[])[]>(this.client, keys, [lockTtl, ...leases.flatMap((lease) => [lease.fencingToken, lease.name])]);
    return replies.map((reply, index) => (Array.isArray(reply) ? { name: leases[index].name, key: reply[1], problem: reply[2] } : reply === 1));
  }

  async finish(reports: RunReport[]): Promise<(boolean | CorruptKey)[]> {
    const results: (boolean | CorruptKey)[] = [];
    for (let i = 0; i < reports.length; i += BATCH) {
      const batch = reports.slice(i, i + BATCH);
      const keys = [this.keys.version, this.keys.leases];
      const args: (string | number)[] = [this.keys.channel];
      for (const report of batch) {
        keys.push(this.keys.job(report.name), this.keys.runs(report.name), this.keys.triggers(report.name));
        args.push(report.name, report.fencingToken, report.status, report.error ?? '', report.retryDelay ?? '');
      }
      const replies = await this.scripts.finish.run<(number | string[])[]>(this.client, keys, args);
      results.push(...replies.map((reply, index) => (Array.isArray(reply) ? { name: batch[index].name, key: reply[1], problem: reply[2] } : reply === 1)));
    }
    return results;
  }

  async requestTrigger(name: string, trigger: JobTrigger, id: string, idTtl = 0, requestId?: string): Promise<TriggerOutcome> {
    const [status, a, b, c] = await this.single(name, this.scripts.trigger).run<(string | number)[]>(
      this.client,
      [
        this.keys.job(name),
        this.keys.triggers(name),
        this.keys.runs(name),
        this.keys.version,
        this.keys.triggerId(name, id),
        this.keys.request(requestId),
      ],
      [name, triggerMember(name, trigger, id), this.keys.channel, idTtl, MAX_PENDING_TRIGGERS, this.pendingTriggersTtl, requestId ?? '', REQUEST_ID_TTL_MS],
    );
    switch (status) {
      case 'accepted':
        return { status, requestedAt: Number(a) };
      case 'skipped':
        return { status, reason: a as 'running' | 'locked', holder: String(b), requestedAt: Number(c) };
      case 'full':
        return { status, pending: Number(a) };
      case 'unknown':
        return { status };
      default:
        throw new Error(`Unexpected trigger reply ${JSON.stringify([status, a, b, c])}`);
    }
  }

  async pause(name: string, requestId?: string): Promise<boolean> {
    const reply = await this.single(name, this.scripts.pause).run<number>(
      this.client,
      [this.keys.job(name), this.keys.due, this.keys.version, this.keys.request(requestId)],
      [name, this.keys.channel, requestId ?? '', REQUEST_ID_TTL_MS],
    );
    return reply === 1;
  }

  async reschedule(name: string, request: RescheduleRequest): Promise<'ok' | 'stale' | 'unknown'> {
    return this.single(name, this.scripts.reschedule).run(
      this.client,
      [this.keys.job(name), this.keys.due, this.keys.version, this.keys.request(request.requestId)],
      [
        name,
        this.keys.channel,
        request.rev,
        request.spec === undefined ? '' : JSON.stringify(request.spec),
        request.resume ? '1' : '0',
        request.next?.base ?? '',
        request.next?.due ?? '',
        request.requestId ?? '',
        REQUEST_ID_TTL_MS,
      ],
    );
  }

  async lock(name: string, holder: string, ttl: number | null, requestId?: string): Promise<LockOutcome | 'unknown'> {
    const [status, other] = await this.single(name, this.scripts.lock).run<string[]>(
      this.client,
      [this.keys.job(name), this.keys.runs(name), this.keys.version, this.keys.request(requestId)],
      [name, holder, ttl ?? 0, this.keys.channel, requestId ?? '', REQUEST_ID_TTL_MS],
    );
    if (status === 'unknown') return 'unknown';
    if (status === 'locked') return { status: 'locked' };
    return { status: 'refused', reason: status === 'running' ? 'running' : 'locked', holder: other };
  }

  async unlock(name: string, holder: string, requestId?: string): Promise<boolean> {
    const reply = await this.single(name, this.scripts.unlock).run<number>(
      this.client,
      [this.keys.job(name), this.keys.version, this.keys.request(requestId)],
      [name, holder, this.keys.channel, requestId ?? '', REQUEST_ID_TTL_MS],
    );
    return reply === 1;
  }

  async acquireSlot(name: string, instanceId: string, lockTtl: number, max: number): Promise<SlotOutcome> {
    const sentAt = Date.now();
    const [status, ...rest] = await this.single(name, this.scripts.slot).run<[string, ...(string | number)[]]>(
      this.client,
      [this.keys.job(name), this.keys.runs(name), this.keys.sessions, this.keys.leases],
      [name, instanceId, lockTtl, max, this.keys.channel],
    );
    if (status === 'acquired' || status === 'held') {
      const [fencingToken, startedAt, expiresAt] = rest.map(Number);
      if (status === 'acquired') this.clock.learn(startedAt, sentAt);
      return { status, fencingToken, startedAt, expiresAt };
    }
    if (status === 'full') {
      const holders: SlotHolder[] = [];
      for (let i = 0; i + 2 < rest.length; i += 3) holders.push({ fencingToken: Number(rest[i]), expiresAt: Number(rest[i + 1]), instanceId: String(rest[i + 2]) });
      return { status, holders };
    }
    return { status: status === 'paused' || status === 'no-session' ? status : 'unknown' };
  }

  async stop(name: string, fencingToken: number, requestId?: string): Promise<boolean> {
    const reply = await this.single(name, this.scripts.stop).run<number>(
      this.client,
      [this.keys.job(name), this.keys.runs(name), this.keys.triggers(name), this.keys.version, this.keys.request(requestId), this.keys.leases],
      [name, fencingToken, this.keys.channel, requestId ?? '', REQUEST_ID_TTL_MS],
    );
    return reply === 1;
  }

  async cancelRetries(name: string, match: RetryMatch): Promise<number> {
    return this.single(name, this.scripts['cancel-retries']).run<number>(
      this.client,
      [this.keys.triggers(name), this.keys.version],
      [name, match.taskId ?? '', match.firstFencingToken ?? '', this.keys.channel],
    );
  }

  async expiredLeases(limit: number): Promise<ExpiredLeases> {
    // The soonest expiries, and one more to know when to look again: a plain read, no script.
    const sentAt = Date.now();
    const [[, soonest], [, time]] = ((await this.client.pipeline().zrange(this.keys.leases, 0, limit, 'WITHSCORES').time().exec()) ?? []) as [Error | null, unknown][];
    const [seconds, micros] = time as [string, string];
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    this.clock.learn(now, sentAt);
    const expired: ExpiredLease[] = [];
    let nextExpiry: number | null = null;
    const flat = (soonest ?? []) as string[];
    for (let i = 0; i < flat.length; i += 2) {
      const at = Number(flat[i + 1]);
      if (at > now || expired.length === limit) {
        nextExpiry = at;
        break;
      }
      const cut = flat[i].lastIndexOf('\n');
      expired.push({ name: flat[i].slice(0, cut), fencingToken: Number(flat[i].slice(cut + 1)), expiredAt: at });
    }
    return { expired, nextExpiry };
  }

  async recoverLeases(runs: RecoveryRequest[]): Promise<RecoveryOutcome[]> {
    const outcomes: RecoveryOutcome[] = [];
    for (let i = 0; i < runs.length; i += BATCH) {
      const batch = runs.slice(i, i + BATCH);
      const keys = [this.keys.leases, this.keys.version, ...batch.flatMap((run) => [this.keys.job(run.name), this.keys.runs(run.name), this.keys.triggers(run.name)])];
      const args: (string | number)[] = [this.keys.channel, ...batch.flatMap((run) => [run.name, run.fencingToken, run.attempts])];
      const sentAt = Date.now();
      const [now, replies] = await this.scripts.recover.run<[number, Reply[][]]>(this.client, keys, args);
      this.clock.learn(now, sentAt);
      replies.forEach((reply, index) => outcomes.push(toRecoveryOutcome(batch[index], reply)));
    }
    return outcomes;
  }

  async dispatchTasks(tasks: TaskDispatchRequest[]): Promise<boolean[]> {
    const results: boolean[] = [];
    for (let i = 0; i < tasks.length; i += BATCH) {
      const batch = tasks.slice(i, i + BATCH);
      const keys = [this.keys.version, ...batch.flatMap((task) => [this.keys.job(task.name), this.keys.triggers(task.name)])];
      const args = [this.keys.channel, this.pendingTriggersTtl, ...batch.flatMap((task) => [task.name, task.taskId])];
      const sentAt = Date.now();
      const [now, replies] = await this.scripts.dispatch.run<[number, number[]]>(this.client, keys, args);
      this.clock.learn(now, sentAt);
      results.push(...replies.map((reply) => reply === 1));
    }
    return results;
  }

  async stopTask(name: string, taskId: number, requestId?: string): Promise<TaskStopOutcome> {
    const [withdrawn, revoked] = await this.single(name, this.scripts['stop-task']).run<[number, number]>(
      this.client,
      [this.keys.runs(name), this.keys.triggers(name), this.keys.request(requestId)],
      [name, taskId, this.keys.channel, requestId ?? '', REQUEST_ID_TTL_MS],
    );
    return { withdrawn, revoked };
  }

  async tasksPending(name: string, taskIds: number[]): Promise<boolean[]> {
    if (taskIds.length === 0) return [];
    // ZMSCORE would be one command, but needs Redis 6.2; a pipeline of ZSCORE is one round trip too.
    const pipeline = this.client.pipeline();
    for (const taskId of taskIds) pipeline.zscore(this.keys.triggers(name), triggerMember(name, 'EVENT', taskTriggerId(taskId)));
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([error, score]) => {
      if (error) throw error;
      return score !== null;
    });
  }

  async saveCheckpoint(name: string, fencingToken: number, state: string, savedAt: number): Promise<CheckpointSaveOutcome> {
    const [status, fence] = await this.single(name, this.scripts.checkpoint).run<[string, number?]>(
      this.client,
      [this.keys.checkpoint(name), this.keys.job(name)],
      ['save', fencingToken, state, savedAt],
    );
    return status === 'stale' ? { status, floor: Number(fence) } : { status: 'saved' };
  }

  async readCheckpoint(name: string): Promise<StoredCheckpoint | null | 'unknown'> {
    const [status, state, savedAt, token] = await this.single(name, this.scripts.checkpoint).run<[string, string?, number?, number?]>(
      this.client,
      [this.keys.checkpoint(name), this.keys.job(name)],
      ['read'],
    );
    if (status === 'unknown') return 'unknown';
    return status === 'found' ? { state: state!, savedAt: Number(savedAt), fencingToken: Number(token) } : null;
  }

  async clearCheckpoint(name: string): Promise<boolean> {
    const reply = await this.single(name, this.scripts.checkpoint).run<number>(this.client, [this.keys.checkpoint(name), this.keys.job(name)], ['clear']);
    return reply === 1;
  }

  async exportState(): Promise<ExportedState> {
    const head = this.client.pipeline();
    head.smembers(this.keys.names);
    head.get(this.keys.version);
    head.get(this.keys.epoch);
    head.time();
    const sentAt = Date.now();
    const [[namesError, names], [, version], [, epoch], [, time]] = (await head.exec()) as [Error | null, unknown][];
    if (namesError) throw namesError;
    const [seconds, micros] = time as [string, string];
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    this.clock.learn(now, sentAt);
    const wanted = (names as string[]).sort();
    const jobs: ExportedJob[] = [];
    const corrupt: CorruptKey[] = [];
    // Plain reads in pipelines of EXPORT_BATCH jobs: Redis serves other clients between them.
    for (let i = 0; i < wanted.length; i += EXPORT_BATCH) {
      const batch = wanted.slice(i, i + EXPORT_BATCH);
      const pipeline = this.client.pipeline();
      for (const name of batch) {
        pipeline.hgetall(this.keys.job(name));
        pipeline.hgetall(this.keys.checkpoint(name));
        pipeline.zscore(this.keys.due, name);
      }
      const replies = (await pipeline.exec()) ?? [];
      batch.forEach((name, index) => {
        const [[jobError, job], [checkpointError, checkpoint], [, due]] = replies.slice(index * 3, index * 3 + 3) as [Error | null, unknown][];
        const hash = job as Record<string, string> | null;
        const problem =
          wrongTypeProblem(jobError, 'hash') ??
          wrongTypeProblem(checkpointError, 'hash') ??
          (hash && Object.keys(hash).length > 0 ? jobHashProblem(hash) : null);
        if (problem) return void corrupt.push({ name, key: jobError || !checkpointError ? this.keys.job(name) : this.keys.checkpoint(name), problem });
        if (jobError || checkpointError) throw jobError ?? checkpointError;
        if (!hash?.rev) return;
        jobs.push(toExportedJob(name, hash, checkpoint as Record<string, string>, due as string | null, now));
      });
    }
    return { now, version: (version as string | null) ?? '0', epoch: (epoch as string | null) ?? '', jobs, corrupt };
  }

  async restoreState(jobs: JobRestore[], instanceId: string): Promise<RestoreOutcome[]> {
    void instanceId;
    const outcomes = new Map<string, RestoreOutcome>();
    for (let i = 0; i < jobs.length; i += BATCH) {
      const batch = jobs.slice(i, i + BATCH);
      // A cheap look first: only the jobs missing now are sent (the script checks again, atomically).
      const exists = this.client.pipeline();
      for (const { job } of batch) exists.exists(this.keys.job(job.name));
      const found = ((await exists.exec()) ?? []).map(([error, count]) => {
        if (error) throw error;
        return count === 1;
      });
      const missing = batch.filter((restore, index) => {
        if (found[index]) outcomes.set(restore.job.name, { name: restore.job.name, outcome: 'present' });
        return !found[index];
      });
      if (missing.length === 0) continue;
      const keys = [this.keys.names, this.keys.due, this.keys.version, ...missing.flatMap(({ job }) => [this.keys.job(job.name), this.keys.checkpoint(job.name)])];
      const args: (string | number)[] = [this.keys.channel];
      for (const restore of missing) args.push(...restoreArgs(restore));
      const replies = await this.scripts.restore.run<[string, number?][]>(this.client, keys, args);
      replies.forEach(([outcome, now], index) => {
        const name = missing[index].job.name;
        outcomes.set(name, outcome === 'passed' ? { name, outcome, now: Number(now) } : { name, outcome: outcome as 'restored' | 'present' });
      });
    }
    return jobs.map(({ job }) => outcomes.get(job.name)!);
  }

  async describe(names?: string[]): Promise<JobRecord[]> {
    const wanted = names ?? (await this.client.smembers(this.keys.names)).sort();
    if (wanted.length === 0) return [];
    const pipeline = this.client.pipeline();
    for (const name of wanted) {
      pipeline.hgetall(this.keys.job(name));
      pipeline.hgetall(this.keys.runs(name));
      pipeline.zscore(this.keys.due, name);
      // A count, and only of the jobs asked about: never the whole set of every job's triggers.
      pipeline.zcard(this.keys.triggers(name));
      // Its pending retries are among its first MAX_PENDING_TRIGGERS triggers (the soonest first).
      pipeline.zrange(this.keys.triggers(name), 0, MAX_PENDING_TRIGGERS - 1, 'WITHSCORES');
    }
    pipeline.time();
    const sentAt = Date.now();
    const replies = (await pipeline.exec()) ?? [];
    // A key of the wrong type fails its own command only: that job is reported, the others listed.
    const failed = replies.find(([error]) => error && !/^WRONGTYPE/.test(error.message));
    if (failed) throw failed[0];
    const [seconds, micros] = replies.pop()![1] as [string, string];
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    this.clock.learn(now, sentAt);
    const records: JobRecord[] = [];
    const corrupt: CorruptKey[] = [];
    wanted.forEach((name, index) => {
      const [[jobError, job], [runsError, runs], , [triggersError, pending], [, triggers]] = replies.slice(index * 5, index * 5 + 5) as [Error | null, unknown][];
      const problems: [string, string | null][] = [
        [this.keys.job(name), wrongTypeProblem(jobError, 'hash')],
        [this.keys.runs(name), wrongTypeProblem(runsError, 'hash')],
        [this.keys.triggers(name), wrongTypeProblem(triggersError, 'sorted set')],
      ];
      const hash = job as Record<string, string> | null;
      if (!jobError && hash && Object.keys(hash).length > 0) problems.push([this.keys.job(name), jobHashProblem(hash)]);
      if (!runsError && runs) problems.push([this.keys.runs(name), runsHashProblem(runs as Record<string, string>)]);
      const bad = problems.find(([, problem]) => problem !== null);
      if (bad) return void corrupt.push({ name, key: bad[0], problem: bad[1]! });
      if (!hash?.rev) return;
      const due = replies[index * 5 + 2][1] as string | null;
      records.push({ ...toJobRecord(name, hash, runs as Record<string, string>, due, now, Number(pending)), pendingRetries: pendingRetries(triggers as string[]) });
    });
    if (names && corrupt.length > 0) throw new CorruptJobError(corrupt[0].name, corrupt[0].key, corrupt[0].problem);
    for (const { name, key, problem } of corrupt) {
      this.logger.warn(`Job "${name}" is left out of the list: its key "${key}" holds data the scheduler did not write: ${problem}.`);
    }
    return records;
  }

  /**
   * Runs a script on one job's keys; its CORRUPT error (a key of the job holds what no script
   * wrote) becomes a `CorruptJobError` naming the job, the key and what is wrong.
   */
  private single(name: string, script: RedisScript): { run<T>(client: Redis | Cluster, keys: string[], args: (string | number)[]): Promise<T> } {
    return {
      run: <T>(client: Redis | Cluster, keys: string[], args: (string | number)[]) =>
        script.run<T>(client, keys, args).catch((error: unknown) => {
          const corrupt = error instanceof Error ? /^CORRUPT (\{.*?\}) script:/s.exec(error.message) : null;
          if (!corrupt) throw error;
          const { key, what } = JSON.parse(corrupt[1]) as { key: string; what: string };
          throw new CorruptJobError(name, key, what);
        }),
    };
  }

  private onMessage(message: string): void {
    let event: { t: string; name?: string; names?: string[]; member?: string; at?: number; token?: number; r?: string; v?: number };
    try {
      event = JSON.parse(message);
    } catch {
      return;
    }
    if (event.t === 'changed' && Array.isArray(event.names)) {
      this.events.next({ type: 'changed', names: event.names, version: event.v });
    } else if (event.t === 'trigger' && event.name && event.member) {
      const { trigger, id } = parseTriggerMember(event.member);
      this.events.next({ type: 'trigger', name: event.name, member: event.member, id, trigger: trigger as JobTrigger, requestedAt: Number(event.at), version: event.v });
    } else if (event.t === 'cancel' && event.name) {
      this.events.next({ type: 'cancel', name: event.name, fencingToken: Number(event.token), reason: event.r === 'stopped' ? 'stopped' : 'replaced' });
    } else if (event.t === 'members') {
      this.events.next({ type: 'members' });
    }
  }
}

/**
 * ioredis's errors for a connection that is down or going down: a command can fail with one of
 * these before the client's 'close' event has told the coordinator.
 */
function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND)$/.test(code)) return true;
  return error.name === 'MaxRetriesPerRequestError' || /Stream isn't writeable|Connection is closed/.test(error.message);
}

/** The five plan values of a claim request (claim.lua), empty for an ordinary claim. */
function missedArgs(request: ClaimRequest): (string | number)[] {
  const plan = request.missed;
  if (!plan || request.member !== undefined) return ['', '', '', '', ''];
  return [plan.serve ?? 'none', plan.catchUp ? '1' : '', plan.skipped, plan.through, plan.episodeTo];
}

function toClaimResult(reply: Reply[]): ClaimResult {
  const [status, a, b, c, d, flags, retry, state, savedAt, writer] = reply;
  switch (status) {
    case 'claimed': {
      const checkpoint = typeof state === 'string' ? { state, savedAt: Number(savedAt), fencingToken: Number(writer) } : null;
      const bits = Number(flags ?? 0);
      // "attempt:first token:task id or ''" for a retry's lease, '' otherwise.
      const [attempt, first, task] = typeof retry === 'string' && retry !== '' ? retry.split(':') : [];
      return {
        status,
        fencingToken: Number(a),
        scheduledAt: Number(b),
        startedAt: Number(c),
        trigger: d as JobTrigger,
        catchUp: (bits & 1) === 1,
        continued: (bits & 2) === 2,
        checkpoint,
        ...(attempt ? { attempt: Number(attempt), firstFencingToken: Number(first) } : {}),
        ...(task ? { taskId: Number(task) } : {}),
      };
    }
    case 'missed':
      return { status, skipped: Number(a), through: Number(b) };
    case 'busy':
      return { status, holder: String(a), expiresAt: Number(b) };
    case 'moved':
      return { status, due: Number(a) < 0 ? null : Number(a), base: Number(b) < 0 ? null : Number(b), rev: Number(c) };
    case 'early':
      return { status, waitMs: Number(a) };
    case 'skipped':
      return { status, reason: a as 'running' | 'locked', holder: String(b), scheduledAt: Number(c) };
    case 'queued':
      return { status, holder: String(a), scheduledAt: Number(b) };
    case 'late':
      return { status, scheduledAt: Number(a), lateMs: Number(b) };
    case 'stale':
    case 'missing':
    case 'gone':
      return { status };
    case 'corrupt':
      return { status, key: String(a), problem: String(b) };
    default:
      throw new Error(`Unexpected claim reply ${JSON.stringify(reply)}`);
  }
}

/** The `last` field of a job hash, written by claim.lua and finish.lua. */
interface LastRunJson {
  k: number;
  i: string;
  g: JobTrigger;
  s: number;
  t: number;
  f?: number;
  st: RunStatus;
  er?: string;
  /** 1 for a catch-up run. */
  c?: number;
  /** A retry's attempt. */
  a?: number;
}

function toLastRun(last: LastRunJson): LastRun {
  return {
    fencingToken: last.k,
    instanceId: last.i,
    trigger: last.g,
    scheduledAt: last.s,
    startedAt: last.t,
    finishedAt: last.f ?? null,
    status: last.st,
    error: last.er || null,
    ...(last.c === 1 ? { catchUp: true } : {}),
    ...(last.a !== undefined ? { attempt: last.a } : {}),
  };
}

/** The pending retries among a job's triggers (`ZRANGE … WITHSCORES`: member, score, …). */
function pendingRetries(triggers: string[]): PendingRetry[] {
  const retries: PendingRetry[] = [];
  for (let i = 0; i < triggers.length; i += 2) {
    const { trigger, id } = parseTriggerMember(triggers[i]);
    const retry = parseRetryId(id);
    if (!retry) continue;
    const { attempt, scheduledAt, firstFencingToken, taskId } = retry;
    retries.push({ attempt, scheduledAt, notBefore: Number(triggers[i + 1]), trigger: trigger as JobTrigger, firstFencingToken, ...(taskId !== null ? { taskId } : {}) });
  }
  return retries;
}

/** As `served_due` in common.lua: the `served` watermark, or the last run's scheduled time. */
function servedDue(job: Record<string, string>): number | null {
  const lastScheduledAt = job.last ? (JSON.parse(job.last) as LastRunJson).s : undefined;
  const candidates = [Number(job.served), Number(lastScheduledAt)].filter((value) => Number.isFinite(value));
  return candidates.length > 0 ? Math.max(...candidates) : null;
}

interface LeaseJson {
  i: string;
  e: number;
  s: number;
  t: number;
  g: JobTrigger;
  /** A dispatched task's id. */
  x?: number;
  /** 1 for a catch-up run. */
  c?: number;
  /** A retry: its attempt and the first attempt's fencing token. */
  a?: number;
  o?: number;
}

function toJobRecord(
  name: string,
  job: Record<string, string>,
  runs: Record<string, string>,
  due: string | null,
  now: number,
  pendingTriggers: number,
): Omit<JobRecord, 'pendingRetries'> {
  const leases = Object.entries(runs).map(([token, raw]) => [token, JSON.parse(raw) as LeaseJson] as const);
  const toRunLease = ([token, lease]: readonly [string, LeaseJson]): RunLease => ({
      fencingToken: Number(token),
      instanceId: lease.i,
      scheduledAt: lease.s,
      startedAt: lease.t,
      expiresAt: lease.e,
      trigger: lease.g,
      // A dispatched task's lease names its task, as the embedded coordinator's does.
      ...(lease.x !== undefined && lease.x !== null ? { taskId: Number(lease.x) } : {}),
      ...(lease.c === 1 ? { catchUp: true } : {}),
      ...(lease.a !== undefined ? { attempt: lease.a, firstFencingToken: lease.o } : {}),
  });
  const running = leases.filter(([, lease]) => lease.e > now).map(toRunLease);
  // Expired without a finish, kept until recover.lua starts the next attempt (or counts it abandoned).
  const awaitingRecovery = leases.filter(([, lease]) => lease.e <= now).map(toRunLease);
  const lockedUntil = Number(job.lockedUntil ?? 0);
  const locked = job.lockedBy && (lockedUntil === 0 || lockedUntil > now) ? { by: job.lockedBy, until: lockedUntil || null } : null;
  return {
    name,
    rev: Number(job.rev),
    spec: JSON.parse(job.spec),
    overlap: job.overlap as OverlapPolicy,
    paused: job.paused === '1',
    base: job.base ? Number(job.base) : null,
    due: due === null ? null : Number(due),
    definition: JSON.parse(job.def),
    definedBy: job.defBy,
    definedAt: Number(job.defAt),
    locked,
    running,
    queued: job.queued === '1',
    pendingTriggers,
    lastRun: job.last ? toLastRun(JSON.parse(job.last) as LastRunJson) : null,
    skippedLate: Number(job.lateSkips ?? 0),
    skippedMissed: Number(job.missedSkips ?? 0),
    catchUpRuns: Number(job.catchUps ?? 0),
    recoveredRuns: Number(job.recovered ?? 0),
    abandonedRuns: Number(job.abandoned ?? 0),
    awaitingRecovery,
    served: servedDue(job),
  };
}

/** A reply of recover.lua for one run. */
function toRecoveryOutcome({ name, fencingToken }: RecoveryRequest, reply: Reply[]): RecoveryOutcome {
  const [status, a, b, c, d, e, f, g] = reply;
  switch (status) {
    case 'recovered':
    case 'abandoned':
      return {
        status,
        name,
        fencingToken,
        attempt: Number(a),
        instanceId: String(b),
        scheduledAt: Number(c),
        trigger: d as JobTrigger,
        ...(e !== '' && e !== null ? { taskId: Number(e) } : {}),
        firstFencingToken: Number(f),
        expiredAt: Number(g),
      };
    case 'alive':
      return { status, name, fencingToken, expiresAt: Number(a) };
    case 'gone':
    case 'lost':
      return { status, name, fencingToken };
    case 'corrupt':
      return { status, name, fencingToken, key: String(a), problem: String(b) };
    default:
      throw new Error(`Unexpected recover reply ${JSON.stringify(reply)}`);
  }
}

/** A job hash and its checkpoint hash, as read by `exportState`. */
function toExportedJob(name: string, job: Record<string, string>, checkpoint: Record<string, string>, due: string | null, now: number): ExportedJob {
  const lockedUntil = Number(job.lockedUntil ?? 0);
  const locked = job.lockedBy && (lockedUntil === 0 || lockedUntil > now) ? { by: job.lockedBy, until: lockedUntil || null } : null;
  const superseded = parseJson<unknown>(job.superseded ?? '[]');
  const hasCheckpoint = checkpoint && Object.keys(checkpoint).length > 0;
  return {
    name,
    definition: JSON.parse(job.def),
    definitionHash: job.defHash ?? '',
    definedBy: job.defBy ?? '',
    definedAt: Number(job.defAt ?? 0),
    superseded: Array.isArray(superseded) ? superseded.filter((hash): hash is string => typeof hash === 'string') : [],
    spec: JSON.parse(job.spec),
    rev: Number(job.rev),
    overlap: job.overlap as OverlapPolicy,
    paused: job.paused === '1',
    base: job.base ? Number(job.base) : null,
    due: due === null ? null : Number(due),
    served: servedDue(job),
    lastRun: job.last ? toLastRun(JSON.parse(job.last) as LastRunJson) : null,
    skippedLate: Number(job.lateSkips ?? 0),
    fence: Number(job.fence ?? 0),
    locked,
    checkpoint: hasCheckpoint
      ? {
          state: checkpoint.s ?? null,
          savedAt: checkpoint.at === undefined ? null : Number(checkpoint.at),
          fencingToken: checkpoint.k === undefined ? null : Number(checkpoint.k),
          fence: Math.max(Number(checkpoint.f ?? 0) || 0, Number(checkpoint.k ?? 0) || 0),
        }
      : null,
  };
}

/** The arguments of restore.lua for one job: the hashes as the scripts write them. */
function restoreArgs({ job, first, fenceFloor, exact }: JobRestore): string[] {
  const fields: string[] = [
    'rev', String(job.rev),
    'def', JSON.stringify(job.definition),
    'defHash', job.definitionHash,
    'defBy', job.definedBy,
    'defAt', String(job.definedAt),
    'superseded', JSON.stringify(job.superseded),
    'spec', JSON.stringify(job.spec),
    'overlap', job.overlap,
    'paused', job.paused ? '1' : '0',
    'lateSkips', String(job.skippedLate),
    'served', String(job.served ?? 0),
  ];
  if (first) fields.push('base', String(first.base));
  if (job.locked) fields.push('lockedBy', job.locked.by, 'lockedUntil', String(job.locked.until ?? 0));
  if (job.lastRun) {
    const last = job.lastRun;
    const json: LastRunJson = { k: last.fencingToken, i: last.instanceId, g: last.trigger, s: last.scheduledAt, t: last.startedAt, st: last.status };
    if (last.finishedAt !== null) json.f = last.finishedAt;
    if (last.error !== null) json.er = last.error;
    if (last.catchUp) json.c = 1;
    fields.push('last', JSON.stringify(json));
  }
  let checkpoint = '';
  if (job.checkpoint) {
    const { state, savedAt, fencingToken, fence } = job.checkpoint;
    const saved: string[] = state !== null ? ['s', state, 'at', String(savedAt ?? 0), 'k', String(fencingToken ?? 0)] : [];
    saved.push('f', String(fence));
    checkpoint = JSON.stringify(saved);
  }
  return [job.name, JSON.stringify(fields), first ? String(first.due) : '', String(Math.max(fenceFloor, job.fence)), checkpoint, exact ? '1' : ''];
}
