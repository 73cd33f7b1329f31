import { ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import type { SampleMessage } from './fixtures/nest-schedule-sample/main';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';
import { EventLog } from './support/wait';

const FIXTURE = join(__dirname, 'fixtures', 'nest-schedule-sample', 'main.ts');
const CRON_LINE = 'cron: second 45';
const INTERVAL_LINE = 'interval: 10 s';
const TIMEOUT_LINE = 'timeout: once, 5 s after start';

/**
 * NestJS's scheduling sample, migrated by adding a bare `@DistributedJob()` to each of its
 * `@Cron('45 * * * * *')`, `@Interval(10000)` and `@Timeout(5000)` methods, run as three replicas
 * (real processes, `ScheduleModule.forRoot()` imported as in the sample) on one Redis: each fire
 * runs once across the three, and @nestjs/schedule runs none of them.
 *
 * With the real expressions the cron fires once a minute: the test waits for the first :45 the
 * replicas are up for (at most a minute after they are ready, 30 s on average) and observes the
 * interval and the timeout meanwhile, then stops them. Each :45 in that window must have run
 * exactly once.
 */
describe('the @nestjs/schedule sample on three replicas', () => {
  jest.setTimeout(150_000);
  const log = new EventLog<SampleMessage>();
  const children: ChildProcess[] = [];

  afterAll(async () => {
    await Promise.all(children.map((child) => stop(child)));
  });

  it('runs each @Cron, @Interval and @Timeout fire once across the replicas, and @nestjs/schedule none', async () => {
    const keyPrefix = uniquePrefix('nest-sample');
    const startedAt = Date.now();
    const ready = await Promise.all(['r1', 'r2', 'r3'].map((instanceId) => start(instanceId, keyPrefix)));
    const readyAt = Math.min(...ready.map((replica) => replica.at));

    for (const replica of ready) {
      // @nestjs/schedule's own registry stays empty: its explorer found no method to schedule.
      expect(replica.nestSchedule).toEqual({ cronJobs: 0, intervals: 0, timeouts: 0 });
      expect(replica.jobs).toEqual(['TasksService.handleCron', 'TasksService.handleInterval', 'TasksService.handleTimeout']);
    }

    const lines = (message: string) => log.events.filter((event) => event.type === 'line' && event.message === message) as Extract<SampleMessage, { type: 'line' }>[];
    await log.until('the :45 cron line, two interval lines and the timeout line', () =>
      lines(CRON_LINE).length >= 1 && lines(INTERVAL_LINE).length >= 2 && lines(TIMEOUT_LINE).length >= 1,
      90_000,
    );
    // The interval's next fire is ~10 s away: stop now, so no fire is cut in two by the stop.
    const stoppedAt = Date.now();
    await Promise.all(children.map((child) => stop(child)));

    // The cron: every line at a :45, no :45 twice, and none missed from the first replica's
    // readiness to the stop (a :45 while they booted may or may not have had a registered job).
    const cron = lines(CRON_LINE).map((line) => line.at);
    for (const at of cron) expect(new Date(at).getSeconds()).toBe(45);
    const minutes = cron.map((at) => Math.floor(at / 60_000));
    expect(new Set(minutes).size).toBe(cron.length);
    for (const due of instantsAtSecond45(readyAt, stoppedAt - 1_000)) expect(minutes).toContain(Math.floor(due / 60_000));

    // The timeout: once in all, although every replica started its own 5 s countdown.
    expect(lines(TIMEOUT_LINE)).toHaveLength(1);
    expect(lines(TIMEOUT_LINE)[0].at - startedAt).toBeGreaterThanOrEqual(5_000);

    // The interval: one line per 10 s period, none doubled (a replica firing it too would add
    // lines within the boot skew of ours) and none missed.
    const interval = lines(INTERVAL_LINE).map((line) => line.at);
    expect(interval.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < interval.length; i++) {
      expect(Math.round((interval[i] - interval[i - 1]) / 10_000)).toBe(1);
    }
  });

  async function start(instanceId: string, keyPrefix: string): Promise<Extract<SampleMessage, { type: 'ready' }>> {
    const child = fork(FIXTURE, [], {
      execArgv: ['-r', 'ts-node/register/transpile-only'],
      env: { ...process.env, NODE_ENV: 'test', REDIS_URL: SHARED_REDIS_URL, KEY_PREFIX: keyPrefix, INSTANCE_ID: instanceId },
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    children.push(child);
    const stderr: string[] = [];
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr.push(chunk.toString());
      process.stderr.write(chunk);
    });
    return new Promise((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`replica ${instanceId} exited with ${code}: ${stderr.join('')}`)));
      child.on('message', (message: SampleMessage) => {
        if (message.type === 'ready') resolve(message);
        else log.push(message);
      });
    });
  }
});

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    if (child.connected) child.disconnect();
    else child.kill('SIGTERM');
  });
}

/** Milliseconds from `now` to the next instant whose local second is `second` (and ms 0). */
function msUntilSecond(second: number, now: number): number {
  const next = new Date(now);
  next.setSeconds(second, 0);
  if (next.getTime() <= now) next.setMinutes(next.getMinutes() + 1);
  return next.getTime() - now;
}

/** The instants with second 45 in [from, to]. */
function instantsAtSecond45(from: number, to: number): number[] {
  const instants: number[] = [];
  for (let at = from - 1 + msUntilSecond(45, from - 1); at <= to; at += 60_000) instants.push(at);
  return instants;
}
