import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cluster, Redis } from 'ioredis';

const SCRIPTS_DIR = join(__dirname, 'scripts');

/**
 * A Lua script run with EVALSHA. When Redis does not know it (first use, or Redis restarted), it
 * is sent once with EVAL, which also caches it. Unlike ioredis' `defineCommand`, this leaves a
 * client the app owns untouched.
 */
export class RedisScript {
  readonly source: string;
  readonly sha: string;

  constructor(
    readonly name: string,
    common: string,
  ) {
    this.source = `${common}\n${readFileSync(join(SCRIPTS_DIR, `${name}.lua`), 'utf8')}`;
    this.sha = createHash('sha1').update(this.source).digest('hex');
  }

  async run<T>(client: Redis | Cluster, keys: string[], args: (string | number)[]): Promise<T> {
    try {
      return (await client.evalsha(this.sha, keys.length, ...keys, ...args)) as T;
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return (await client.eval(this.source, keys.length, ...keys, ...args)) as T;
    }
  }
}

const SCRIPT_NAMES = ['register', 'snapshot', 'claim', 'extend', 'finish', 'trigger', 'pause', 'reschedule', 'lock', 'unlock', 'heartbeat', 'stop', 'checkpoint', 'restore', 'recover', 'cancel-retries', 'slot', 'dispatch', 'stop-task'] as const;

export type ScriptName = (typeof SCRIPT_NAMES)[number];

/** Reads the scripts from disk; called once per coordinator, not at import. */
export function loadScripts(): Record<ScriptName, RedisScript> {
  const common = readFileSync(join(SCRIPTS_DIR, 'common.lua'), 'utf8');
  return Object.fromEntries(SCRIPT_NAMES.map((name) => [name, new RedisScript(name, common)])) as Record<ScriptName, RedisScript>;
}
