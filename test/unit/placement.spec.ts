import { Logger } from '@nestjs/common';
import { InvalidJobOptionError, InvalidSchedulerOptionError, PlacementCandidate, randomStrategy, spreadStrategy, stickyStrategy } from '../../lib';
import { HostPlacement } from '../../lib/cluster/host-placement';
import { defineHosts } from '../../lib/cluster/hosts.options';
import type { MemberRecord } from '../../lib/cluster/member-record.interface';
import { applyStrategy } from '../../lib/cluster/placement-strategies';
import type { PlacementStrategyRegistry } from '../../lib/cluster/placement-strategy.registry';
import { BUILT_IN_STRATEGIES } from '../../lib/cluster/placement-strategies';
import { resolveSchedulerOptions } from '../../lib/scheduler-options.resolver';

const candidate = (id: string, runCount = 0, joinedAt = 0, labels: Record<string, string> = {}): PlacementCandidate => ({ id, runCount, joinedAt, labels });
const input = (members: PlacementCandidate[], max: number, previous: readonly string[] = [], key = 'job') => ({ key, members, previous, max });

describe('placement strategies', () => {
  it('spread: the fewest runs first, ties by id', () => {
    const members = [candidate('c', 2), candidate('a', 5), candidate('b', 2), candidate('d', 0)];
    expect(spreadStrategy.choose(input(members, 3))).toEqual(['d', 'b', 'c']);
    expect(spreadStrategy.choose(input(members, 10))).toEqual(['d', 'b', 'c', 'a']);
  });

  it('sticky: keeps the members chosen last time while they are eligible, fills from the oldest', () => {
    const members = [candidate('a', 0, 300), candidate('b', 0, 100), candidate('c', 0, 200)];
    expect(stickyStrategy.choose(input(members, 1))).toEqual(['b']);
    // The leader is kept though an older member is eligible...
    expect(stickyStrategy.choose(input([...members, candidate('old', 0, 1)], 1, ['c']))).toEqual(['c']);
    // ...until it leaves; its place goes to the oldest.
    expect(stickyStrategy.choose(input(members.filter((m) => m.id !== 'c'), 1, ['c']))).toEqual(['b']);
    expect(stickyStrategy.choose(input(members, 2, ['a']))).toEqual(['a', 'b']);
  });

  it('sticky: a replica that knows no previous choice finds the one the others kept (the oldest members)', () => {
    let members = [candidate('a', 0, 100), candidate('b', 0, 200)];
    const leader = stickyStrategy.choose(input(members, 1));
    members = [...members, candidate('c', 0, 300)];
    expect(stickyStrategy.choose(input(members, 1, leader))).toEqual(stickyStrategy.choose(input(members, 1)));
  });

  it('random: the same draw on every replica for the same key, whatever the order members are listed in, spread over keys', () => {
    const members = ['r1', 'r2', 'r3', 'r4'].map((id) => candidate(id));
    for (let i = 0; i < 50; i++) {
      expect(randomStrategy.choose(input(members, 2, [], `job-${i}`))).toEqual(randomStrategy.choose(input([...members].reverse(), 2, ['r1'], `job-${i}`)));
    }
    const firsts = new Set(Array.from({ length: 40 }, (_, i) => randomStrategy.choose(input(members, 1, [], `job-${i}`))[0]));
    expect(firsts.size).toBe(4);
    // A member leaving moves only the keys it held.
    for (let i = 0; i < 100; i++) {
      const before = randomStrategy.choose(input(members, 1, [], `job-${i}`))[0];
      const after = randomStrategy.choose(input(members.filter((m) => m.id !== 'r2'), 1, [], `job-${i}`))[0];
      if (before !== 'r2') expect(after).toBe(before);
    }
  });

  it("keeps only a strategy's answers that are candidates, once each, at most max", () => {
    const strategy = { choose: () => ['x', 'a', 'a', 'b', 'c'] };
    expect(applyStrategy(strategy, input([candidate('a'), candidate('b'), candidate('c')], 2))).toEqual(['a', 'b']);
  });
});

describe('HostPlacement', () => {
  const logger = new Logger('test');
  const registry = { get: (name: string) => BUILT_IN_STRATEGIES[name], names: () => Object.keys(BUILT_IN_STRATEGIES) } as unknown as PlacementStrategyRegistry;
  const member = (id: string, labels: Record<string, string>, worker = true, runCount = 0, joinedAt = 0): MemberRecord => ({
    id, labels, worker, runCount, joinedAt, beatAt: 0, sessionTtl: 10_000,
  });
  const live = [
    member('api', { zone: 'eu-1' }, false),
    member('eu-a', { zone: 'eu-1', role: 'worker' }, true, 3, 10),
    member('eu-b', { zone: 'eu-1', role: 'worker' }, true, 1, 20),
    member('us-a', { zone: 'us-1', role: 'worker' }, true, 0, 5),
  ];
  const jobs = [
    { name: 'anywhere', hosts: null },
    { name: 'eu-only', hosts: defineHosts('eu-only', { labels: { zone: 'eu-1' } }) },
    { name: 'eu-leader', hosts: defineHosts('eu-leader', { labels: { zone: 'eu-1' }, strategy: 'sticky', max: 1 }) },
    { name: 'least-loaded', hosts: defineHosts('least-loaded', { max: 2 }) },
  ];
  const placementOf = (id: string) => {
    const self = live.find((m) => m.id === id)!;
    const placement = new HostPlacement({ id, labels: self.labels, worker: self.worker }, () => jobs, registry, logger);
    placement.update(live);
    return placement;
  };

  it('lets only the workers whose labels match claim, narrowed by the strategy; an API-only member claims nothing', () => {
    const placement = placementOf('eu-b');
    expect(placement.claimers('anywhere')).toEqual(['eu-a', 'eu-b', 'us-a']);
    expect(placement.claimers('eu-only')).toEqual(['eu-a', 'eu-b']);
    expect(placement.claimers('eu-leader')).toEqual(['eu-a']);
    expect(placement.claimers('least-loaded')).toEqual(['eu-b', 'us-a']);
    expect(['anywhere', 'eu-only', 'eu-leader', 'least-loaded'].map((job) => placement.mayClaim(job))).toEqual([true, true, false, true]);
    expect(placementOf('us-a').mayClaim('eu-only')).toBe(false);
    const api = placementOf('api');
    expect(jobs.map((job) => api.mayClaim(job.name))).toEqual([false, false, false, false]);
  });

  it('computes the same claimers on every member, and says when they change', () => {
    const views = live.map((m) => placementOf(m.id));
    for (const job of jobs) expect(new Set(views.map((view) => view.claimers(job.name).join()))).toEqual(new Set([views[0].claimers(job.name).join()]));
    const placement = views[2]; // eu-b's view
    expect(placement.update(live)).toBe(false);
    // The sticky leader leaves: the other eu worker takes over, and stays when the leader returns younger.
    expect(placement.update(live.filter((m) => m.id !== 'eu-a'))).toBe(true);
    expect(placement.claimers('eu-leader')).toEqual(['eu-b']);
    placement.update([...live.filter((m) => m.id !== 'eu-a'), member('eu-a', { zone: 'eu-1', role: 'worker' }, true, 0, 99)]);
    expect(placement.claimers('eu-leader')).toEqual(['eu-b']);
  });
});

describe('hosts and membership options', () => {
  it('defaults: no strategy without max nor strategy; spread for max alone; max 1 for a strategy alone', () => {
    expect(defineHosts('j', undefined)).toBeNull();
    expect(defineHosts('j', { labels: { zone: 'eu-1' } })).toEqual({ labels: { zone: 'eu-1' }, strategy: null, max: Infinity });
    expect(defineHosts('j', { max: 3 })).toEqual({ labels: {}, strategy: 'spread', max: 3 });
    expect(defineHosts('j', { strategy: 'sticky' })).toEqual({ labels: {}, strategy: 'sticky', max: 1 });
  });

  it.each([
    [{ max: 0 }, /"max" must be a whole number/],
    [{ max: 1.5 }, /"max" must be a whole number/],
    [{ strategy: '' }, /"strategy" must be the name/],
    [{ labels: { zone: 3 } }, /"labels": label "zone" must have a non-empty string value/],
    [{ labels: ['eu-1'] }, /"labels": expected an object of string labels/],
    [{ label: { zone: 'eu-1' } }, /unknown field\(s\) "label"/],
    ['eu-1', /expected \{ labels\?, strategy\?, max\? \}/],
  ])('refuses hosts %j, naming the job, the option and the value', (hosts, reason) => {
    const call = () => defineHosts('Reports.send', hosts);
    expect(call).toThrow(InvalidJobOptionError);
    expect(call).toThrow(/^Job "Reports.send": option "hosts" has an invalid value/);
    expect(call).toThrow(reason);
  });

  it('applies the membership defaults (10 s session, no labels, a worker) and validates them', () => {
    expect(resolveSchedulerOptions({}, {}).cluster).toEqual({ sessionTtl: 10_000, labels: {}, worker: true, concurrency: 10 });
    expect(resolveSchedulerOptions({ sessionTtl: '3s', labels: { zone: 'eu-1' }, worker: false }, {}).cluster).toEqual({ sessionTtl: 3_000, labels: { zone: 'eu-1' }, worker: false, concurrency: 10 });
    expect(() => resolveSchedulerOptions({ sessionTtl: 500 }, {})).toThrow(InvalidSchedulerOptionError);
    expect(() => resolveSchedulerOptions({ sessionTtl: 500 }, {})).toThrow(/option "sessionTtl" has an invalid value 500/);
    expect(() => resolveSchedulerOptions({ labels: { zone: 1 } as never }, {})).toThrow(/option "labels" has an invalid value \{"zone":1\}/);
    expect(() => resolveSchedulerOptions({ worker: 'no' as never }, {})).toThrow(/option "worker" has an invalid value 'no': expected true, false or \{ concurrency \}/);
  });
});
