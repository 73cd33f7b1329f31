import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, watch, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

const REPO = join(__dirname, '..', '..');
const FIXTURES = join(REPO, 'test', 'fixtures', 'consumers');

/**
 * Where consumer apps are installed, kept between runs. Outside the repository on purpose: Node
 * and TypeScript look for packages in every `node_modules` above an app, so an app under the
 * repository's `node_modules/.cache` would find the repository's own `typeorm` and prove nothing.
 */
export const CONSUMER_CACHE =
  process.env.DSCHED_CONSUMER_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'nestjs-distributed-scheduler', 'consumers');

export interface CommandResult {
  command: string;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A command that failed, with its output in the message, so the test's failure shows why. */
export class CommandFailedError extends Error {
  constructor(readonly result: CommandResult) {
    super(`\`${result.command}\` exited with ${result.code}\n--- stdout\n${tail(result.stdout)}\n--- stderr\n${tail(result.stderr)}`);
  }
}

function tail(text: string, max = 12_000): string {
  return text.length <= max ? text : `[… ${text.length - max} characters cut]\n${text.slice(-max)}`;
}

/** What npm adds to the environment of the scripts it runs (`npm test`), not what the user set. */
const NPM_SCRIPT_ENV = /^(npm_(?!config_)|npm_config_(local_prefix|call|user_agent|npm_version|node_gyp)$)/i;

/**
 * The environment of the test process without what `npm test` and Jest put in it, so a nested
 * npm behaves as in a user's shell (a user's own npm_config_*, e.g. a registry, is kept).
 */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!NPM_SCRIPT_ENV.test(key) && !['INIT_CWD', 'NODE_ENV', 'NODE_OPTIONS', 'JEST_WORKER_ID'].includes(key)) env[key] = value;
  }
  return { ...env, ...extra };
}

export function run(command: string, args: string[], cwd: string, options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CommandResult> {
  const display = [command, ...args].join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: cleanEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${options.timeoutMs} ms]`;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 300_000);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      const result = { command: `${display} (in ${cwd})`, code, stdout, stderr };
      if (code === 0) resolve(result);
      else reject(new CommandFailedError(result));
    });
  });
}

const npm = (args: string[], cwd: string) => run('npm', [...args, '--no-audit', '--no-fund', '--prefer-offline'], cwd, { timeoutMs: 600_000 });

/** `npm pack` of the repository (its `prepack` builds it first) into a temporary directory. */
export async function packLibrary(): Promise<string> {
  const destination = mkdtempSync(join(tmpdir(), 'dsched-pack-'));
  await run('npm', ['pack', '--pack-destination', destination], REPO, { timeoutMs: 300_000 });
  const [tarball] = readdirSync(destination).filter((file) => file.endsWith('.tgz'));
  if (!tarball) throw new Error(`npm pack wrote no tarball into ${destination}`);
  return join(destination, tarball);
}

/** The files in a tarball, without npm's `package/` folder. */
export async function tarballFiles(tarball: string): Promise<string[]> {
  const { stdout } = await run('tar', ['-tzf', tarball], tmpdir());
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((file) => file.replace(/^package\//, ''));
}

/**
 * Runs `fn` holding the lock `name` in the cache, so that test runs on one machine (several
 * checkouts) never install into the same app at once. A lock whose process is gone is taken over.
 */
export async function withCacheLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
  mkdirSync(CONSUMER_CACHE, { recursive: true });
  const lock = join(CONSUMER_CACHE, `${name}.lock`);
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (!ownerAlive(lock)) {
      rmSync(lock, { recursive: true, force: true });
      continue;
    }
    // Woken when the holder removes the lock; the timeout re-checks a holder that died.
    await new Promise<void>((resolve) => {
      const watcher = watch(CONSUMER_CACHE, () => done());
      const timer = setTimeout(() => done(), 2_000);
      function done() {
        watcher.close();
        clearTimeout(timer);
        resolve();
      }
    });
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function ownerAlive(lock: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(join(lock, 'pid'), 'utf8'));
  } catch {
    // Just created, its pid being written; or left so by a process that died right then.
    const created = statSync(lock, { throwIfNoEntry: false });
    return created !== undefined && Date.now() - created.mtimeMs < 10_000;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Installs the consumer app `name` (from test/fixtures/consumers) with a plain `npm install`, adds
 * the library's tarball to it, and compiles it with its own TypeScript and tsconfig. The install
 * of its dependencies is kept in `CONSUMER_CACHE`, keyed by its package.json and Node's version,
 * so a warm run only reinstalls the tarball and re-checks what changed. Returns the app's directory.
 */
export async function installConsumer(name: string, tarball: string): Promise<string> {
  const fixture = join(FIXTURES, name);
  const manifest = readFileSync(join(fixture, 'package.json'));
  const key = createHash('sha256').update(manifest).update(process.version).digest('hex').slice(0, 12);
  const dir = join(CONSUMER_CACHE, `${name}-${key}`);
  if (!existsSync(join(dir, '.installed'))) {
    mkdirSync(CONSUMER_CACHE, { recursive: true });
    // Installs of an older package.json of this app are of no further use.
    for (const old of readdirSync(CONSUMER_CACHE).filter((entry) => entry.startsWith(`${name}-`))) {
      rmSync(join(CONSUMER_CACHE, old), { recursive: true, force: true });
    }
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), manifest);
    await npm(['install'], dir);
    writeFileSync(join(dir, '.installed'), `${new Date().toISOString()}\n`);
  }
  for (const stale of ['src', 'tsconfig.json', join('node_modules', 'nestjs-distributed-scheduler')]) {
    rmSync(join(dir, stale), { recursive: true, force: true });
  }
  cpSync(join(fixture, 'src'), join(dir, 'src'), { recursive: true });
  cpSync(join(fixture, 'tsconfig.json'), join(dir, 'tsconfig.json'));
  // As a user adds the library to an app: npm checks its peer ranges against what is installed.
  await npm(['install', tarball, '--no-save'], dir);
  // Incremental: a warm run re-checks only what changed (the library's declarations and what
  // depends on them), not all of @types/node and NestJS again; the diagnostics are the same.
  const tsc = join(dir, 'node_modules', 'typescript', 'bin', 'tsc');
  await run(process.execPath, [tsc, '-p', 'tsconfig.json', '--incremental', '--tsBuildInfoFile', '.tsbuildinfo'], dir, { timeoutMs: 300_000 });
  return dir;
}

/** Runs a compiled consumer app (`dist/main.js`) until it exits by itself. */
export function runConsumer(dir: string, env: Record<string, string>): Promise<CommandResult> {
  return run(process.execPath, [join(dir, 'dist', 'main.js')], dir, { env, timeoutMs: 60_000 });
}
