import { describeFailure, runScenario } from './run-scenario';
import { newSeed } from './random';
import { KNOWN_FAILING, SCENARIOS, testedScenarios } from './scenarios';

/**
 * The fault-injection suite, short forms: each scenario starts its own redis-server and replica
 * processes of the built package (`npm run build` first), applies its nemesis, and checks the
 * history the replicas wrote. `npm run faults` runs the long forms; KNOWN_FAILING ones wait for
 * their fixes (`npm run faults -- --all`).
 */
describe('fault injection', () => {
  const seed = process.env.FAULTS_SEED ? Number(process.env.FAULTS_SEED) : newSeed();

  it('names only existing scenarios in KNOWN_FAILING (a stale name would hide nothing and mislead)', () => {
    expect(Object.keys(KNOWN_FAILING).filter((name) => !SCENARIOS.some((scenario) => scenario.name === name))).toEqual([]);
  });

  for (const scenario of testedScenarios()) {
    it(`${scenario.name}: ${scenario.what}`, async () => {
      const result = await runScenario(scenario, 'short', seed);
      if (!result.report.ok) {
        throw new Error(`${describeFailure(result)}\nreplay: FAULTS_SEED=${seed} npm run faults -- --short --only ${scenario.name}`);
      }
      expect(result.report.violations).toEqual([]);
    }, scenario.seconds.short * 1000 + 90_000);
  }
});
