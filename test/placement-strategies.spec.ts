import { Injectable } from '@nestjs/common';
import { firstValueFrom, filter } from 'rxjs';
import {
  ClusterMembership,
  DistributedJob,
  DuplicatePlacementStrategyError,
  InvalidJobOptionError,
  JobContext,
  JobScheduler,
  PlacementInput,
  PlacementStrategy,
  PlacementStrategyRegistry,
  RegisterPlacementStrategy,
} from '../lib';
import { bootApp, CapturingLogger } from './support/app';
import { EventLog } from './support/wait';

/**
 * Strategies registered by name in a real app (embedded coordinator, one replica): a provider
 * decorated with @RegisterPlacementStrategy is found and used by the jobs naming it, a job naming
 * none that exists fails bootstrap, and the replica's own join and leave are told.
 */
describe('placement strategies in an app', () => {
  it('uses a strategy registered with @RegisterPlacementStrategy, and a strategy choosing nobody keeps the job waiting', async () => {
    const inputs: PlacementInput[] = [];
    const runs = new EventLog<string>();

    @RegisterPlacementStrategy('nobody-unless-labelled')
    @Injectable()
    class NobodyUnlessLabelled implements PlacementStrategy {
      choose(input: PlacementInput): string[] {
        inputs.push(input);
        return input.members.filter((member) => member.labels.pick === 'yes').map((member) => member.id);
      }
    }

    @Injectable()
    class Jobs {
      @DistributedJob({ name: 'chosen', hosts: { strategy: 'nobody-unless-labelled', max: 2 } })
      chosen(ctx: JobContext) {
        runs.push(ctx.name);
      }
      @DistributedJob({ name: 'anywhere' })
      anywhere(ctx: JobContext) {
        runs.push(ctx.name);
      }
    }

    for (const [labels, runsChosen] of [[{ pick: 'no' }, false], [{ pick: 'yes' }, true]] as const) {
      const app = await bootApp({ instanceId: 'solo', labels }, [NobodyUnlessLabelled, Jobs]);
      try {
        expect(app.get(PlacementStrategyRegistry).get('nobody-unless-labelled')).toBeInstanceOf(NobodyUnlessLabelled);
        expect(inputs.at(-1)).toMatchObject({ key: 'chosen', max: 2, members: [{ id: 'solo', labels }] });
        runs.events.length = 0;
        const scheduler = app.get(JobScheduler);
        await scheduler.trigger('chosen');
        await scheduler.trigger('anywhere');
        await runs.until('the run of anywhere', (events) => events.includes('anywhere'));
        if (runsChosen) await runs.until('the run of chosen', (events) => events.includes('chosen'));
        // Triggered before "anywhere", and the replica claims both in the same turn: not chosen, it waits.
        else expect(runs.events).toEqual(['anywhere']);
      } finally {
        await app.close();
      }
    }
  });

  it('fails bootstrap for an unknown strategy, naming the job, the option and the value', async () => {
    @Injectable()
    class Jobs {
      @DistributedJob({ name: 'leader', every: '1m', hosts: { strategy: 'stiky', max: 1 } })
      leader() {}
    }
    const boot = bootApp({}, [Jobs]);
    await expect(boot).rejects.toThrow(InvalidJobOptionError);
    await expect(bootApp({}, [Jobs])).rejects.toThrow(
      `Job "leader": option "hosts" has an invalid value {"strategy":"stiky","max":1}: unknown placement strategy 'stiky': expected one of 'spread', 'sticky', 'random'`,
    );
  });

  it('refuses a second strategy under a taken name', async () => {
    @RegisterPlacementStrategy('spread')
    @Injectable()
    class MySpread implements PlacementStrategy {
      choose(input: PlacementInput) {
        return input.members.map((member) => member.id);
      }
    }
    @Injectable()
    class Jobs {
      @DistributedJob({ name: 'j', hosts: { strategy: 'spread' } })
      j() {}
    }
    await expect(bootApp({}, [MySpread, Jobs])).rejects.toThrow(DuplicatePlacementStrategyError);
  });

  it("logs this replica's join and its leave at shutdown, and emits them on members$", async () => {
    const logger = new CapturingLogger();
    const app = await bootApp({ instanceId: 'solo', labels: { zone: 'eu-1' } }, [], logger);
    const membership = app.get(ClusterMembership);
    const left = firstValueFrom(membership.members$.pipe(filter((event) => event.type === 'left')));
    await logger.until('log', /^Joined the cluster as "solo" \(zone=eu-1; worker, session TTL 10000 ms\), its only member\.$/);
    expect((await membership.members()).map(({ id, labels, worker, self, runs }) => ({ id, labels, worker, self, runs }))).toEqual([
      { id: 'solo', labels: { zone: 'eu-1' }, worker: true, self: true, runs: [] },
    ]);
    await app.close();
    expect(await left).toMatchObject({ type: 'left', reason: 'shutdown', member: { id: 'solo', self: true } });
    expect(logger.count('log', /^Member "solo" left the cluster \(left at shutdown\)\.$/)).toBe(1);
  });
});
