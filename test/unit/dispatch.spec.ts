import { Logger } from '@nestjs/common';
import { InvalidJobOptionError, InvalidSchedulerOptionError } from '../../lib';
import { HostPlacement } from '../../lib/cluster/host-placement';
import type { PlacementStrategyRegistry } from '../../lib/cluster/placement-strategy.registry';
import type { MemberRecord } from '../../lib/cluster/member-record.interface';
import { TaskSlots } from '../../lib/dispatch/task-slots';
import { parseTaskTriggerId, taskOfTrigger, taskTriggerId } from '../../lib/dispatch/task-trigger-id';
import { resolveSchedulerOptions } from '../../lib/scheduler-options.resolver';
import { ClaimOrder } from '../../lib/scheduling/claim-order';
import type { DueEntry } from '../../lib/scheduling/due-queue';
import { defineJob } from '../../lib/scheduling/job-definition';
import { BACKUP_CLAIM_DELAY_MS } from '../../lib/scheduler.constants';

describe('task dispatch options', () => {
  it('takes worker: { concurrency } (default 10) and keeps false as API-only', () => {
    expect(resolveSchedulerOptions({ worker: { concurrency: 3 } }, {}).cluster).toMatchObject({ worker: true, concurrency: 3 });
    expect(resolveSchedulerOptions({ worker: {} }, {}).cluster).toMatchObject({ worker: true, concurrency: 10 });
    expect(resolveSchedulerOptions({ worker: false }, {}).cluster).toMatchObject({ worker: false });
    for (const bad of [0, 1.5, -1, '4']) {
      const call = () => resolveSchedulerOptions({ worker: { concurrency: bad as number } }, {});
      expect(call).toThrow(InvalidSchedulerOptionError);
      expect(call).toThrow(/option "worker.concurrency" has an invalid value/);
    }
    expect(() => resolveSchedulerOptions({ worker: { limit: 3 } as never }, {})).toThrow(/option "worker" has an invalid value .*unknown field\(s\) limit/);
  });

  it("validates a job's concurrency, naming the job, the option and the value", () => {
    expect(defineJob({ name: 'fan', concurrency: 4 }, 'x').concurrency).toBe(4);
    for (const bad of [0, 2.5, '3']) {
      const call = () => defineJob({ name: 'fan', concurrency: bad as number }, 'x');
      expect(call).toThrow(InvalidJobOptionError);
      expect(call).toThrow(/^Job "fan": option "concurrency" has an invalid value/);
    }
  });
});

describe('task trigger ids', () => {
  it('name the task of a dispatch and of a task retry, nothing for other triggers', () => {
    expect(taskTriggerId(12)).toBe('task:12');
    expect(parseTaskTriggerId('task:12')).toBe(12);
    expect(taskOfTrigger('task:12')).toBe(12);
    expect(taskOfTrigger('retry:2:100:55:12')).toBe(12);
    expect(taskOfTrigger('retry:2:100:55:')).toBeNull();
    expect(taskOfTrigger('start')).toBeNull();
  });
});

describe('ClaimOrder for tasks', () => {
  const member = (id: string, worker = true): MemberRecord => ({ id, labels: {}, worker, runCount: 0, joinedAt: 0, beatAt: 0, sessionTtl: 10_000 });
  const orderOf = (self: string) => {
    const placement = new HostPlacement({ id: self, labels: {}, worker: true }, () => [{ name: 'fan', hosts: null }], {} as PlacementStrategyRegistry, new Logger('test'));
    placement.update([member('a'), member('b'), member('c'), member('api', false)]);
    return new ClaimOrder(self, placement);
  };

  it('prefers a replica per task, so the 1,000 tasks of one job spread over the workers (none for an API-only one)', () => {
    const orders = { a: orderOf('a'), b: orderOf('b'), c: orderOf('c'), api: orderOf('api') };
    const preferred: Record<string, number> = { a: 0, b: 0, c: 0, api: 0 };
    for (let task = 1; task <= 1_000; task++) {
      const first = Object.entries(orders).filter(([, order]) => order.claimTime('fan', 0, task) === 0);
      // Exactly one preferred replica per task; every other one is a backup.
      expect(first).toHaveLength(1);
      preferred[first[0][0]]++;
    }
    expect(preferred.api).toBe(0);
    for (const id of ['a', 'b', 'c']) expect(preferred[id]).toBeGreaterThan(250);
    // The job's own fires still have one preferred replica.
    expect(Object.values(orders).filter((order) => order.claimTime('fan', 0) === 0)).toHaveLength(1);
    expect(orders.api.claimTime('fan', 0, 1)).toBe(BACKUP_CLAIM_DELAY_MS);
  });
});

describe('TaskSlots', () => {
  const entry = (name: string, n: number, at = n): DueEntry => ({ name, member: `${name}\nEVENT\ntask:${n}`, at });

  function slots(limit: number) {
    let running = 0;
    const claimed: DueEntry[] = [];
    let now = 1_000;
    const taskSlots = new TaskSlots(
      limit,
      () => running,
      (e) => e.member !== undefined,
      () => true,
      (entries) => claimed.push(...taskSlots.admit(entries)),
      () => now,
    );
    return {
      taskSlots,
      claimed,
      start: () => running++,
      end: () => running--,
      advance: (ms: number) => (now += ms),
    };
  }

  it('admits tasks up to the free slots, parks the others soonest first, and claims them as slots free up', () => {
    const { taskSlots, claimed, start, end } = slots(2);
    const fire: DueEntry = { name: 'job', due: 5, at: 5 };
    const admitted = taskSlots.admit([entry('fan', 3), fire, entry('fan', 1), entry('fan', 2), entry('fan', 4)]);
    expect(admitted).toEqual([entry('fan', 3), fire, entry('fan', 1)]);
    // One claim won (a run now), one lost (the task was another replica's): its slot goes to the soonest parked task.
    taskSlots.settled(entry('fan', 3), false);
    start();
    taskSlots.settled(entry('fan', 1), true);
    taskSlots.pump();
    expect(claimed).toEqual([entry('fan', 2)]);
    taskSlots.settled(entry('fan', 2), false);
    start();
    taskSlots.pump();
    expect(claimed).toHaveLength(1);
    end();
    taskSlots.ended('fan');
    expect(claimed).toEqual([entry('fan', 2), entry('fan', 4)]);
  });

  it("keeps a full job's tasks waiting, and tries one again per task of the job that ends", () => {
    const { taskSlots, claimed, start, end } = slots(10);
    const waiting = [1, 2, 3].map((n) => entry('limited', n));
    taskSlots.admit(waiting);
    waiting.forEach((e) => {
      taskSlots.full(e, Number.MAX_SAFE_INTEGER);
      taskSlots.settled(e, false);
    });
    expect(claimed).toEqual([]);
    start();
    end();
    taskSlots.ended('limited');
    expect(claimed.map((e) => e.member)).toEqual([waiting[0].member]);
    // That one was taken elsewhere meanwhile: the next waiting one is tried.
    taskSlots.settled(claimed[0], true);
    expect(claimed.map((e) => e.member)).toEqual([waiting[0].member, waiting[1].member]);
    taskSlots.clear();
  });
});
