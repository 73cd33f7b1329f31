import { createServer, Server, Socket } from 'node:net';

/**
 * A TCP proxy between Redis clients and a Redis server that can tamper with one reply, as a
 * network does: delay it (the command ran; its answer comes late, after a client's
 * `commandTimeout`), drop it and reset the connection (the command ran; its answer is lost, and
 * ioredis sends the command again once it has reconnected), or refuse the command with an error
 * (it never runs), or delay a command on its way (it runs late). It can also hold what clients
 * send (the server hears nothing until `release`), or black-hole every connection (nothing passes
 * either way, nothing is closed) until `heal`.
 *
 * Used by the specs (`onNextReply`, `hold`) and by the network nemeses of the fault-injection
 * suite (`dropReply`, `delayReply`, `disarm`, `blackhole`, `heal`).
 *
 * Replies are paired with commands by order, as Redis and ioredis do; a connection that
 * subscribes is passed through untouched from then on (its messages answer no command).
 */
export type ReplyFault =
  /** The command runs; its reply comes this much later (and every reply after it on the connection). */
  | { delayMs: number }
  /** The command runs; its reply is lost and the connection reset. */
  | { drop: true }
  /** The command never reaches the server; the proxy answers it with this error. */
  | { refuse: string }
  /** The command reaches the server this much later (and every command after it on the connection). */
  | { delayCommandMs: number };

/** Which commands a fault is for: the command as its words (`['EVALSHA', sha, ...]`). */
export type CommandMatch = (command: string[]) => boolean;

export interface ReplyRule {
  /** Which command's reply to tamper with. */
  match: CommandMatch;
  fault: ReplyFault;
}

/** A fault taken by a command: `applied` is called once its reply was tampered with, or with false if it never was. */
interface TakenFault {
  fault: ReplyFault;
  applied: (applied: boolean) => void;
}

interface ArmedRule {
  rule: ReplyRule;
  matched: (command: string[]) => void;
  applied: (applied: boolean) => void;
}

interface Pending {
  taken: TakenFault | null;
  /** The answer the proxy gives itself, for a command it did not forward. */
  answer?: Buffer;
}

interface Reply {
  bytes: Buffer;
  at: number;
  taken: TakenFault | null;
}

export class RedisProxy {
  private readonly connections = new Set<Connection>();
  private rules: ArmedRule[] = [];
  held = false;
  blackholed = false;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    readonly target: { host: string; port: number },
  ) {}

  /** Listens on a free port of 127.0.0.1, in front of Redis at `target` (a port of 127.0.0.1, or host and port). */
  static async start(target: number | { host: string; port: number }): Promise<RedisProxy> {
    let proxy!: RedisProxy;
    const server = createServer((client) => proxy.accept(client));
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
    });
    proxy = new RedisProxy(server, port, typeof target === 'number' ? { host: '127.0.0.1', port: target } : target);
    return proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /**
   * Tampers with the reply to the next command that matches (once). Resolves with that command
   * when it has been seen on its way to the server.
   */
  onNextReply(rule: ReplyRule): Promise<string[]> {
    return new Promise((resolve) => this.rules.push({ rule, matched: resolve, applied: () => undefined }));
  }

  /**
   * Drops the reply to the next command that matches, then resets that connection (the command
   * ran in Redis). Resolves true once that happened, false if `disarm` came first or the
   * connection closed before the reply.
   */
  dropReply(match: CommandMatch): Promise<boolean> {
    return this.arm({ match, fault: { drop: true } });
  }

  /**
   * Holds the reply to the next command that matches (and the replies behind it on its
   * connection) for `ms`. Resolves true once it was delivered, false if `disarm` came first or
   * the connection closed before.
   */
  delayReply(match: CommandMatch, ms: number): Promise<boolean> {
    return this.arm({ match, fault: { delayMs: ms } });
  }

  /**
   * Forgets the faults armed that no command has taken yet: those of `dropReply` and
   * `delayReply` resolve false (those of `onNextReply` never resolve).
   */
  disarm(): void {
    this.rules.splice(0).forEach((armed) => armed.applied(false));
  }

  /** The fault for a command just sent, if a rule takes it. */
  faultFor(command: string[]): TakenFault | null {
    const index = this.rules.findIndex(({ rule }) => rule.match(command));
    if (index < 0) return null;
    const [{ rule, matched, applied }] = this.rules.splice(index, 1);
    matched(command);
    return { fault: rule.fault, applied };
  }

  /** Keeps what clients send from reaching the server until `release`. */
  hold(): void {
    this.held = true;
  }

  release(): void {
    this.held = false;
    this.connections.forEach((connection) => connection.flushHeld());
  }

  /** Nothing passes in either direction, on open connections and new ones, and nothing is closed, until `heal()`. */
  blackhole(): void {
    this.blackholed = true;
    this.connections.forEach((connection) => connection.blackhole());
  }

  /** Ends a black hole: the connections it held are reset (TCP gave up on them), new ones pass. */
  heal(): void {
    this.blackholed = false;
    this.connections.forEach((connection) => connection.blackholed && connection.destroy());
  }

  async close(): Promise<void> {
    this.disarm();
    this.connections.forEach((connection) => connection.destroy());
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private arm(rule: ReplyRule): Promise<boolean> {
    return new Promise<boolean>((resolve) => this.rules.push({ rule, matched: () => undefined, applied: resolve }));
  }

  private accept(client: Socket): void {
    const connection = new Connection(this, client);
    this.connections.add(connection);
    client.once('close', () => this.connections.delete(connection));
    if (this.blackholed) connection.blackhole();
  }
}

class Connection {
  blackholed = false;
  private readonly upstream: Socket;
  private fromClient = Buffer.alloc(0);
  private fromServer = Buffer.alloc(0);
  private readonly heldBytes: Buffer[] = [];
  /** Commands on their way to the server, in order, each not before its time. */
  private readonly sendQueue: { bytes: Buffer; at: number }[] = [];
  private sendTimer?: NodeJS.Timeout;
  private readonly pending: Pending[] = [];
  private readonly outbox: Reply[] = [];
  private pumpTimer?: NodeJS.Timeout;
  private subscriber = false;
  private destroyed = false;

  constructor(
    private readonly proxy: RedisProxy,
    private readonly client: Socket,
  ) {
    this.upstream = new Socket();
    this.upstream.connect(proxy.target.port, proxy.target.host);
    for (const socket of [client, this.upstream]) {
      socket.on('error', () => this.destroy());
      socket.on('close', () => this.destroy());
    }
    client.on('data', (chunk: Buffer) => this.onClientData(chunk));
    this.upstream.on('data', (chunk: Buffer) => this.onServerData(chunk));
  }

  blackhole(): void {
    this.blackholed = true;
  }

  flushHeld(): void {
    for (const bytes of this.heldBytes.splice(0)) this.upstream.write(bytes);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    clearTimeout(this.pumpTimer);
    clearTimeout(this.sendTimer);
    // Faults taken by commands whose replies will never come: not applied.
    for (const { taken } of [...this.pending.splice(0), ...this.outbox.splice(0)]) taken?.applied(false);
    this.client.destroy();
    this.upstream.destroy();
  }

  private onClientData(chunk: Buffer): void {
    if (this.blackholed) return;
    if (!this.subscriber) {
      this.fromClient = Buffer.concat([this.fromClient, chunk]);
      for (;;) {
        const parsed = parseResp(this.fromClient, 0);
        if (!parsed) break;
        const bytes = this.fromClient.subarray(0, parsed.end);
        this.fromClient = this.fromClient.subarray(parsed.end);
        const command = (Array.isArray(parsed.value) ? parsed.value : [parsed.value]).map(String);
        if (/^p?subscribe$/i.test(command[0] ?? '')) this.subscriber = true;
        const taken = this.subscriber ? null : this.proxy.faultFor(command);
        if (taken && 'refuse' in taken.fault) {
          this.pending.push({ taken, answer: Buffer.from(`-${taken.fault.refuse}\r\n`) });
          this.answerRefused();
        } else {
          this.pending.push({ taken });
          const delay = taken && 'delayCommandMs' in taken.fault ? taken.fault.delayCommandMs : 0;
          this.sendQueue.push({ bytes: Buffer.from(bytes), at: Date.now() + delay });
          this.send();
        }
      }
      return;
    }
    this.forward(chunk);
  }

  private send(): void {
    clearTimeout(this.sendTimer);
    while (this.sendQueue.length > 0 && !this.destroyed) {
      const wait = this.sendQueue[0].at - Date.now();
      if (wait > 0) {
        this.sendTimer = setTimeout(() => this.send(), wait);
        return;
      }
      this.forward(this.sendQueue.shift()!.bytes);
    }
  }

  private forward(bytes: Buffer): void {
    if (this.blackholed) return;
    if (this.proxy.held) this.heldBytes.push(Buffer.from(bytes));
    else this.upstream.write(bytes);
  }

  /** Refused commands at the head of the line are answered in their turn. */
  private answerRefused(): void {
    while (this.pending[0]?.answer) {
      const { answer, taken } = this.pending.shift()!;
      this.outbox.push({ bytes: answer!, at: Date.now(), taken });
    }
    this.pump();
  }

  private onServerData(chunk: Buffer): void {
    if (this.blackholed) return;
    this.fromServer = Buffer.concat([this.fromServer, chunk]);
    for (;;) {
      if (this.subscriber && this.pending.length === 0 && this.outbox.length === 0) {
        // Messages of a subscribed connection answer no command: passed through as they come.
        this.client.write(this.fromServer);
        this.fromServer = Buffer.alloc(0);
        return;
      }
      const parsed = parseResp(this.fromServer, 0);
      if (!parsed) return;
      const bytes = this.fromServer.subarray(0, parsed.end);
      this.fromServer = this.fromServer.subarray(parsed.end);
      const taken = this.pending.shift()?.taken ?? null;
      const delay = taken && 'delayMs' in taken.fault ? taken.fault.delayMs : 0;
      // Order is kept: a reply after a delayed one waits for it, as on a real connection.
      this.outbox.push({ bytes: Buffer.from(bytes), at: Date.now() + delay, taken });
      this.answerRefused();
    }
  }

  private pump(): void {
    clearTimeout(this.pumpTimer);
    while (this.outbox.length > 0 && !this.destroyed) {
      const head = this.outbox[0];
      const wait = head.at - Date.now();
      if (wait > 0) {
        this.pumpTimer = setTimeout(() => this.pump(), wait);
        return;
      }
      this.outbox.shift();
      if (head.taken && 'drop' in head.taken.fault) {
        // The command ran; its reply is lost with the connection.
        head.taken.applied(true);
        this.destroy();
        return;
      }
      // A black hole swallows what was on its way, too.
      if (!this.blackholed) this.client.write(head.bytes);
      head.taken?.applied(!this.blackholed);
    }
  }
}

type RespValue = string | number | null | RespValue[];

/** One RESP2 value at `offset`, or null if the buffer does not hold all of it yet. */
export function parseResp(buffer: Buffer, offset: number): { value: RespValue; end: number } | null {
  if (offset >= buffer.length) return null;
  const lineEnd = buffer.indexOf('\r\n', offset);
  if (lineEnd < 0) return null;
  const type = String.fromCharCode(buffer[offset]);
  const line = buffer.toString('utf8', offset + 1, lineEnd);
  switch (type) {
    case '+':
    case '-':
      return { value: line, end: lineEnd + 2 };
    case ':':
      return { value: Number(line), end: lineEnd + 2 };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null, end: lineEnd + 2 };
      const end = lineEnd + 2 + length + 2;
      if (buffer.length < end) return null;
      return { value: buffer.toString('utf8', lineEnd + 2, lineEnd + 2 + length), end };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, end: lineEnd + 2 };
      const items: RespValue[] = [];
      let cursor = lineEnd + 2;
      for (let i = 0; i < count; i++) {
        const item = parseResp(buffer, cursor);
        if (!item) return null;
        items.push(item.value);
        cursor = item.end;
      }
      return { value: items, end: cursor };
    }
    default:
      // An inline command (words separated by spaces), as redis-cli may send.
      return { value: line.split(' '), end: lineEnd + 2 };
  }
}
