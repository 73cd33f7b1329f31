import { Logger } from '@nestjs/common';
import IORedis, { Cluster, Redis, RedisOptions } from 'ioredis';
import type { RedisConnection } from '../../scheduler-options.interface';

/** Longest wait between two reconnection attempts, in ms. */
export const MAX_RECONNECT_DELAY_MS = 5_000;

/**
 * Exponential backoff from 100 ms to 5 s, with jitter so replicas that lost Redis together do
 * not all knock at the same moment when it returns.
 */
export function reconnectDelay(attempt: number): number {
  const ceiling = Math.min(MAX_RECONNECT_DELAY_MS, 100 * 2 ** Math.min(attempt, 10));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

const OWNED_CLIENT_DEFAULTS: RedisOptions = {
  // Connects when the scheduler starts, not when the module is built.
  lazyConnect: true,
  retryStrategy: reconnectDelay,
  // Fail commands at once while disconnected instead of queueing them: the loop resynchronizes
  // when Redis returns, and a runtime control should tell its caller that Redis is away.
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  connectionName: 'nestjs-distributed-scheduler',
};

export function isRedisClient(connection: RedisConnection | undefined): connection is Redis | Cluster {
  return connection instanceof Redis || connection instanceof Cluster;
}

/** A client and whether this library created it (and so must close it). */
export interface RedisHandle {
  client: Redis | Cluster;
  owned: boolean;
}

export function openRedis(connection: RedisConnection): RedisHandle {
  if (isRedisClient(connection)) return { client: connection, owned: false };
  const client =
    typeof connection === 'string'
      ? new IORedis(connection, OWNED_CLIENT_DEFAULTS)
      : new IORedis({ ...OWNED_CLIENT_DEFAULTS, ...connection });
  return { client, owned: true };
}

/** Where a client connects, for messages: `host:port` or the Cluster's startup nodes. */
export function describeRedisTarget(client: Redis | Cluster): string {
  if (client instanceof Cluster) {
    const nodes = client.nodes().map((node) => `${node.options.host}:${node.options.port}`);
    return nodes.length > 0 ? `Redis Cluster ${nodes.join(', ')}` : 'Redis Cluster';
  }
  const { host, port, path, db } = client.options;
  return `Redis at ${path ?? `${host}:${port}`}${db ? ` db ${db}` : ''}`;
}

/**
 * Logs a connection problem once per outage, and its end, instead of once per failed command
 * or reconnection attempt.
 */
export class OutageLog {
  private since: number | null = null;

  constructor(
    private readonly logger: Logger,
    private readonly target: string,
  ) {}

  get inOutage(): boolean {
    return this.since !== null;
  }

  failed(error: unknown): void {
    if (this.since !== null) return;
    this.since = Date.now();
    const reason = error instanceof Error ? error.message : String(error);
    this.logger.error(
      `${this.target} is unreachable (${reason}). Jobs wait (no fire is claimed meanwhile): reconnecting with ` +
        `backoff (at most ${MAX_RECONNECT_DELAY_MS / 1000} s apart), then resynchronizing.`,
    );
  }

  recovered(): void {
    if (this.since === null) return;
    const seconds = ((Date.now() - this.since) / 1000).toFixed(1);
    this.since = null;
    this.logger.log(`${this.target} is reachable again after ${seconds} s; resynchronizing jobs.`);
  }
}
