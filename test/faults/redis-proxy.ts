import { createServer, Server, Socket, connect } from 'node:net';

/**
 * A TCP proxy between one replica and Redis, for the network nemeses: it can drop the reply to
 * one command (the connection then breaks, as when a reply is lost with its connection), delay
 * the reply to one command (the command has run in Redis; the client hears of it late), or
 * black-hole every connection (nothing passes either way, nothing is closed) until healed.
 *
 * Replies are matched to commands by RESP framing: on a connection that is not subscribed,
 * Redis answers commands in order, so the n-th reply frame answers the n-th command frame.
 */
export class RedisProxy {
  private readonly connections = new Set<ProxyConnection>();
  private armed: ArmedFault[] = [];
  private blackholed = false;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  static async start(target: { host: string; port: number }): Promise<RedisProxy> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const proxy = new RedisProxy(server, (server.address() as { port: number }).port, target);
    server.on('connection', (client) => proxy.accept(client));
    return proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /**
   * Drops the reply to the next command whose frame contains `pattern`, then breaks that
   * connection. Resolves with true when it happened, false if disarmed first.
   */
  dropReply(pattern: string): Promise<boolean> {
    return this.arm({ pattern, action: 'drop' });
  }

  /** Holds the reply to the next command containing `pattern` (and the replies behind it) for `ms`. */
  delayReply(pattern: string, ms: number): Promise<boolean> {
    return this.arm({ pattern, action: 'delay', ms });
  }

  /** Forgets the faults armed and not applied yet (no matching command came). */
  disarm(): void {
    this.armed.splice(0).forEach((fault) => fault.done(false));
  }

  /** Nothing passes in either direction, on open connections and new ones, until `heal()`. */
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
    this.connections.forEach((connection) => connection.destroy());
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private arm(fault: Omit<ArmedFault, 'done'>): Promise<boolean> {
    return new Promise<boolean>((resolve) => this.armed.push({ ...fault, done: resolve }));
  }

  /** The first armed fault whose pattern this command frame contains, taken off the list. */
  takeFault(frame: Buffer): ArmedFault | null {
    const index = this.armed.findIndex((fault) => frame.includes(fault.pattern));
    return index < 0 ? null : this.armed.splice(index, 1)[0];
  }

  private accept(client: Socket): void {
    const upstream = connect(this.target.port, this.target.host);
    const connection = new ProxyConnection(this, client, upstream, () => this.connections.delete(connection));
    this.connections.add(connection);
    if (this.blackholed) connection.blackhole();
  }
}

interface ArmedFault {
  pattern: string;
  action: 'drop' | 'delay';
  ms?: number;
  done: (applied: boolean) => void;
}

class ProxyConnection {
  blackholed = false;
  private subscribed = false;
  private fromClient = Buffer.alloc(0);
  private fromServer = Buffer.alloc(0);
  /** One entry per command sent and not yet answered: the fault to apply to its reply. */
  private readonly pending: Array<ArmedFault | null> = [];
  /** Replies held back (a delayed one and those behind it, so their order is kept). */
  private held: Buffer[] | null = null;
  private closed = false;

  constructor(
    private readonly proxy: RedisProxy,
    private readonly client: Socket,
    private readonly upstream: Socket,
    onClose: () => void,
  ) {
    client.on('data', (chunk) => this.onClientData(chunk));
    upstream.on('data', (chunk) => this.onServerData(chunk));
    const close = () => {
      if (this.closed) return;
      this.closed = true;
      onClose();
      this.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.on('close', close);
      socket.on('error', close);
    }
  }

  blackhole(): void {
    this.blackholed = true;
  }

  destroy(): void {
    this.client.destroy();
    this.upstream.destroy();
  }

  private onClientData(chunk: Buffer): void {
    if (this.blackholed) return;
    this.fromClient = Buffer.concat([this.fromClient, chunk]);
    let end: number;
    while ((end = frameEnd(this.fromClient, 0)) > 0) {
      const frame = this.fromClient.subarray(0, end);
      this.fromClient = this.fromClient.subarray(end);
      if (/^\*\d+\r\n\$\d+\r\n(P|S)?SUBSCRIBE\r\n/i.test(frame.toString('latin1', 0, 40))) this.subscribed = true;
      this.pending.push(this.subscribed ? null : this.proxy.takeFault(frame));
      this.upstream.write(frame);
    }
  }

  private onServerData(chunk: Buffer): void {
    if (this.blackholed) return;
    if (this.subscribed) {
      this.toClient(chunk);
      return;
    }
    this.fromServer = Buffer.concat([this.fromServer, chunk]);
    let end: number;
    while ((end = frameEnd(this.fromServer, 0)) > 0) {
      const frame = this.fromServer.subarray(0, end);
      this.fromServer = this.fromServer.subarray(end);
      const fault = this.pending.shift() ?? null;
      if (fault?.action === 'drop') {
        // The command ran in Redis; its reply is lost with the connection.
        fault.done(true);
        this.destroy();
        return;
      }
      if (fault?.action === 'delay') {
        this.held ??= [];
        this.held.push(Buffer.from(frame));
        setTimeout(() => {
          const held = this.held ?? [];
          this.held = null;
          held.forEach((reply) => this.toClient(reply));
          fault.done(true);
        }, fault.ms);
        continue;
      }
      this.toClient(Buffer.from(frame));
    }
  }

  private toClient(reply: Buffer): void {
    if (this.held) this.held.push(reply);
    else if (!this.closed) this.client.write(reply);
  }
}

/** The end of the RESP frame that starts at `at`, or -1 if it is not complete yet. */
export function frameEnd(buffer: Buffer, at: number): number {
  if (at >= buffer.length) return -1;
  const lineEnd = buffer.indexOf('\r\n', at);
  if (lineEnd < 0) return -1;
  const type = String.fromCharCode(buffer[at]);
  if (type === '+' || type === '-' || type === ':') return lineEnd + 2;
  const count = Number(buffer.toString('latin1', at + 1, lineEnd));
  if (type === '$') {
    if (count < 0) return lineEnd + 2;
    const end = lineEnd + 2 + count + 2;
    return end <= buffer.length ? end : -1;
  }
  if (type === '*') {
    let position = lineEnd + 2;
    for (let i = 0; i < count; i++) {
      position = frameEnd(buffer, position);
      if (position < 0) return -1;
    }
    return position;
  }
  // An inline command (never sent by ioredis): one line.
  return lineEnd + 2;
}
