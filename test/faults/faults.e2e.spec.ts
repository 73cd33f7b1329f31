import { describeFailure, runScenario, ScenarioResult } from './run-scenario';
import { newSeed } from './random';
import { KNOWN_FAILING, Scenario, SCENARIOS, testedScenarios } from './scenarios';

/**
 * The fault-injection suite, short forms: each scenario starts its own redis-server and replica
 * processes of the built package (`npm run build` first), applies its nemesis, and checks the
 * history the replicas wrote. `npm run faults` runs the long forms, one at a time; KNOWN_FAILING
 * ones wait for their fixes (`npm run faults -- --all`).
 *
 * Here the scenarios run three at a time (they share nothing: each has its own server, ports,
 * processes and history), which cuts the suite's longest part to a third; each test waits for its own.
 */
const LANES = 3;

describe('fault injection', () => {
  const seed = process.env.FAULTS_SEED ? Number(process.env.FAULTS_SEED) : newSeed();
  const scenarios = testedScenarios();
  const results = new Map<string, Promise<ScenarioResult>>();

  beforeAll(() => {
    const starts = new Map<string, () => void>();
    for (const scenario of scenarios) results.set(scenario.name, new Promise<void>((start) => starts.set(scenario.name, start)).then(() => runScenario(scenario, 'short', seed)));
    // Each lane starts the next scenario when its current one has ended.
    const queue: Scenario[] = [...scenarios];
    const lane = async (): Promise<void> => {
      for (let scenario = queue.shift(); scenario; scenario = queue.shift()) {
        starts.get(scenario.name)!();
        await results.get(scenario.name)!.catch(() => undefined);
      }
    };
    for (let i = 0; i < LANES; i++) void lane();
  });

  it('names only existing scenarios in KNOWN_FAILING (a stale name would hide nothing and mislead)', () => {
    expect(Object.keys(KNOWN_FAILING).filter((name) => !SCENARIOS.some((scenario) => scenario.name === name))).toEqual([]);
  });

  for (const scenario of scenarios) {
    it(`${scenario.name}: ${scenario.what}`, async () => {
      const result = await results.get(scenario.name)!;
      if (!result.report.ok) {
        throw new Error(`${describeFailure(result)}\nreplay: FAULTS_SEED=${seed} npm run faults -- --short --only ${scenario.name}`);
      }
      expect(result.report.violations).toEqual([]);
      // Waiting for the scenario ahead of it in its lane, then its own run.
    }, 3 * (scenario.seconds.short * 1000 + 90_000));
  }
});
