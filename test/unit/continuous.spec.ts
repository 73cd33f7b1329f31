import { Logger } from '@nestjs/common';
import { InvalidJobOptionError } from '../../lib';
import { HostPlacement } from '../../lib/cluster/host-placement';
import type { MemberRecord } from '../../lib/cluster/member-record.interface';
import { BUILT_IN_STRATEGIES } from '../../lib/cluster/placement-strategies';
import type { PlacementStrategyRegistry } from '../../lib/cluster/placement-strategy.registry';
import { checkContinuousStrategy, continuousHosts } from '../../lib/continuous/continuous.options';
import { defineJob, sharedDefinition } from '../../lib/scheduling/job-definition';

const define = (options: Record<string, unknown>) => defineJob({ name: 'consumer', ...options }, 'Jobs.consumer');
const invalid = (options: Record<string, unknown>, option: string, reason: RegExp) => {
  let error: unknown;
  try {
    define(options);
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(InvalidJobOptionError);
  expect(error).toMatchObject({ job: 'consumer', option });
  expect((error as Error).message).toMatch(reason);
};

describe('continuous job options', () => {
  it('defaults to sticky, no labels; shares max in the definition and never retries', () => {
    const definition = define({ continuous: { max: 2 } });
    expect(definition.continuous).toEqual({ max: 2, strategy: 'sticky', labels: {} });
    expect(definition.retry).toEqual({ attempts: 1 });
    expect(sharedDefinition(definition)).toEqual({ spec: null, overlap: 'skip', paused: false, continuous: { max: 2 } });
    // Other jobs' shared definitions (and their hashes) are as they were.
    expect(sharedDefinition(define({ every: 5_000 }))).not.toHaveProperty('continuous');
    expect(define({ continuous: { max: 1, strategy: 'spread', labels: { role: 'worker' } } }).continuous).toEqual({ max: 1, strategy: 'spread', labels: { role: 'worker' } });
  });

  it('refuses a bad max, strategy name, labels or field, naming the job, the option and the value', () => {
    for (const max of [0, 1.5, -1, '2', undefined, 1_001]) invalid({ continuous: { max } }, 'continuous', /"max" must be a whole number/);
    invalid({ continuous: { max: 1, strategy: 'no spaces' } }, 'continuous', /"strategy" must be the name/);
    invalid({ continuous: { max: 1, labels: { zone: 1 } } }, 'continuous', /"labels": label "zone" must have a non-empty string value/);
    invalid({ continuous: { max: 1, count: 2 } }, 'continuous', /unknown field\(s\) "count"/);
    invalid({ continuous: 2 }, 'continuous', /expected \{ max, strategy\?, labels\? \}/);
    expect(() => define({ continuous: { max: 0 } })).toThrow(`Job "consumer": option "continuous" has an invalid value {"max":0}`);
  });

  it('excludes cron, every, at, runOnStart, hosts, retry, initialDelay and an overlap other than skip', () => {
    invalid({ continuous: { max: 1 }, cron: '* * * * *' }, 'cron', /a continuous job runs for as long as its replica is chosen, so it takes no "cron"/);
    invalid({ continuous: { max: 1 }, every: '5s' }, 'every', /takes no "every"/);
    invalid({ continuous: { max: 1 }, at: new Date(Date.now() + 60_000) }, 'at', /takes no "at"/);
    invalid({ continuous: { max: 1 }, runOnStart: true }, 'runOnStart', /takes no "runOnStart"/);
    invalid({ continuous: { max: 1 }, hosts: { labels: { a: 'b' } } }, 'hosts', /continuous\.labels and continuous\.strategy/);
    invalid({ continuous: { max: 1 }, retry: { attempts: 3 } }, 'retry', /restarted after a backoff/);
    invalid({ continuous: { max: 1 }, overlap: 'allow' }, 'overlap', /its overlap is 'skip'/);
    expect(define({ continuous: { max: 1 }, runOnStart: false, overlap: 'skip' }).continuous).not.toBeNull();
  });

  it('refuses an unregistered strategy at bootstrap, listing the known ones', () => {
    const { continuous } = define({ continuous: { max: 1, strategy: 'nearest' } });
    const known = (name: string) => name in BUILT_IN_STRATEGIES;
    expect(() => checkContinuousStrategy('consumer', continuous, { max: 1, strategy: 'nearest' }, known, () => Object.keys(BUILT_IN_STRATEGIES))).toThrow(
      /option "continuous" has an invalid value \{"max":1,"strategy":"nearest"\}: unknown placement strategy 'nearest': expected one of 'spread', 'sticky', 'random'/,
    );
  });
});

describe('the choice of a continuous job', () => {
  const logger = new Logger('test');
  const registry = { get: (name: string) => BUILT_IN_STRATEGIES[name], names: () => Object.keys(BUILT_IN_STRATEGIES) } as unknown as PlacementStrategyRegistry;
  const member = (id: string, joinedAt: number, labels: Record<string, string> = {}, worker = true): MemberRecord => ({
    id, labels, worker, runCount: 0, joinedAt, beatAt: 0, sessionTtl: 10_000,
  });
  const job = (name: string, continuous: Record<string, unknown>) => ({ name, hosts: continuousHosts(define({ name, continuous }).continuous!) });
  const jobs = [job('pair', { max: 2 }), job('leader', { max: 1 }), job('eu-cache', { max: 5, labels: { zone: 'eu' } })];
  const replica = (id: string, live: MemberRecord[]) => {
    const self = live.find((m) => m.id === id) ?? member(id, Infinity);
    const placement = new HostPlacement({ id, labels: self.labels, worker: self.worker }, () => jobs, registry, logger);
    placement.update(live);
    return placement;
  };
  /** Which replicas think they are chosen: what the cluster runs if each acts on its own view. */
  const chosen = (job: string, replicas: Map<string, HostPlacement>) => [...replicas].filter(([, placement]) => placement.mayClaim(job)).map(([id]) => id);
  const cluster = (live: MemberRecord[]) => new Map(live.map((m) => [m.id, replica(m.id, live)]));

  it('chooses the same max replicas on every replica, from the same membership', () => {
    const live = [member('a', 10, { zone: 'eu' }), member('b', 20, { zone: 'us' }), member('c', 30, { zone: 'eu' }), member('api', 1, {}, false)];
    const replicas = cluster(live);
    expect(chosen('pair', replicas)).toEqual(['a', 'b']);
    expect(chosen('leader', replicas)).toEqual(['a']);
    // Labels: only the eu workers, however many max allows; never the API-only one.
    expect(chosen('eu-cache', replicas)).toEqual(['a', 'c']);
    for (const placement of replicas.values()) expect(placement.claimers('pair')).toEqual(['a', 'b']);
  });

  it('re-places on a leave (the one gone is replaced by the next oldest) and keeps the leader when a replica joins', () => {
    const live = [member('a', 10), member('b', 20), member('c', 30)];
    const replicas = cluster(live);
    // b dies: everyone re-chooses from the same membership.
    const after = live.filter((m) => m.id !== 'b');
    for (const [id, placement] of replicas) if (id !== 'b') placement.update(after);
    replicas.delete('b');
    expect(chosen('pair', replicas)).toEqual(['a', 'c']);
    // A newer replica joins, older by id but younger by join time: the leader stays, and so does the pair.
    const joined = [...after, member('0-new', 40)];
    for (const placement of replicas.values()) placement.update(joined);
    replicas.set('0-new', replica('0-new', joined));
    expect(chosen('leader', replicas)).toEqual(['a']);
    expect(chosen('pair', replicas)).toEqual(['a', 'c']);
  });
});
