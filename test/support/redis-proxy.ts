import { createServer, Server, Socket } from 'node:net';

/**
 * A TCP proxy between Redis clients and a Redis server that can tamper with one reply, as a
 * network does: delay it (the command ran; its answer comes late, after a client's
 * `commandTimeout`), drop it and reset the connection (the command ran; its answer is lost, and
 * ioredis sends the command again once it has reconnected), or refuse the command with an error
 * (it never runs), or delay a command on its way (it runs late). It can
 * also hold what clients send (the server hears nothing until `release`), or black-hole every
 * byte both ways.
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

export interface ReplyRule {
  /** Which command's reply to tamper with: the command as its words (`['EVALSHA', sha, ...]`). */
  match: (command: string[]) => boolean;
  fault: ReplyFault;
}

interface Pending {
  fault: ReplyFault | null;
  /** The answer the proxy gives itself, for a command it did not forward. */
  answer?: Buffer;
}

interface Reply {
  bytes: Buffer;
  at: number;
  fault: ReplyFault | null;
}

export class RedisProxy {
  private readonly connections = new Set<Connection>();
  private readonly rules: { rule: ReplyRule; matched: (command: string[]) => void }[] = [];
  held = false;
  blackHoled = false;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    readonly targetPort: number,
  ) {}

  static async start(targetPort: number): Promise<RedisProxy> {
    let proxy!: RedisProxy;
    const server = createServer((client) => proxy.accept(client));
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
    });
    proxy = new RedisProxy(server, port, targetPort);
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
    return new Promise((resolve) => this.rules.push({ rule, matched: resolve }));
  }

  /** The fault for a command just sent, if a rule takes it. */
  faultFor(command: string[]): ReplyFault | null {
    const index = this.rules.findIndex(({ rule }) => rule.match(command));
    if (index < 0) return null;
    const [{ rule, matched }] = this.rules.splice(index, 1);
    matched(command);
    return rule.fault;
  }

  /** Keeps what clients send from reaching the server until `release`. */
  hold(): void {
    this.held = true;
  }

  release(): void {
    this.held = false;
    this.connections.forEach((connection) => connection.flushHeld());
  }

  /** Drops every byte both ways, without closing anything, until called with false. */
  blackHole(on = true): void {
    this.blackHoled = on;
  }

  async close(): Promise<void> {
    this.connections.forEach((connection) => connection.destroy());
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    const connection = new Connection(this, client);
    this.connections.add(connection);
    client.once('close', () => this.connections.delete(connection));
  }
}

class Connection {
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
    this.upstream.connect(proxy.targetPort, '127.0.0.1');
    for (const socket of [client, this.upstream]) {
      socket.on('error', () => this.destroy());
      socket.on('close', () => this.destroy());
    }
    client.on('data', (chunk: Buffer) => this.onClientData(chunk));
    this.upstream.on('data', (chunk: Buffer) => this.onServerData(chunk));
  }

  flushHeld(): void {
    for (const bytes of this.heldBytes.splice(0)) this.upstream.write(bytes);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    clearTimeout(this.pumpTimer);
    clearTimeout(this.sendTimer);
    this.client.destroy();
    this.upstream.destroy();
  }

  private onClientData(chunk: Buffer): void {
    if (this.proxy.blackHoled) return;
    if (!this.subscriber) {
      this.fromClient = Buffer.concat([this.fromClient, chunk]);
      for (;;) {
        const parsed = parseResp(this.fromClient, 0);
        if (!parsed) break;
        const bytes = this.fromClient.subarray(0, parsed.end);
        this.fromClient = this.fromClient.subarray(parsed.end);
        const command = (Array.isArray(parsed.value) ? parsed.value : [parsed.value]).map(String);
        if (/^p?subscribe$/i.test(command[0] ?? '')) this.subscriber = true;
        const fault = this.subscriber ? null : this.proxy.faultFor(command);
        if (fault && 'refuse' in fault) {
          this.pending.push({ fault: null, answer: Buffer.from(`-${fault.refuse}\r\n`) });
          this.answerRefused();
        } else {
          this.pending.push({ fault });
          const delay = fault && 'delayCommandMs' in fault ? fault.delayCommandMs : 0;
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
    if (this.proxy.held) this.heldBytes.push(Buffer.from(bytes));
    else this.upstream.write(bytes);
  }

  /** Refused commands at the head of the line are answered in their turn. */
  private answerRefused(): void {
    while (this.pending[0]?.answer) {
      this.outbox.push({ bytes: this.pending.shift()!.answer!, at: Date.now(), fault: null });
    }
    this.pump();
  }

  private onServerData(chunk: Buffer): void {
    if (this.proxy.blackHoled) return;
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
      const fault = this.pending.shift()?.fault ?? null;
      const delay = fault && 'delayMs' in fault ? fault.delayMs : 0;
      // Order is kept: a reply after a delayed one waits for it, as on a real connection.
      this.outbox.push({ bytes, at: Date.now() + delay, fault });
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
      if (head.fault && 'drop' in head.fault) {
        // The command ran; its reply is lost with the connection.
        this.destroy();
        return;
      }
      this.client.write(head.bytes);
    }
  }
}

type RespValue = string | number | null | RespValue[];

/** One RESP2 value at `offset`, or null if the buffer does not hold all of it yet. */
function parseResp(buffer: Buffer, offset: number): { value: RespValue; end: number } | null {
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
