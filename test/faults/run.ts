/**
 * `npm run faults`: the fault-injection scenarios in their long form, one after another, with a
 * random seed printed first so that a failure replays (`FAULTS_SEED=<seed> npm run faults -- --only <name>`).
 *   --all           also the scenarios in KNOWN_FAILING (expected to fail until their fix lands)
 *   --only a,b      just these scenarios
 *   --short         the short forms (as in `npm test`)
 * Exits non-zero if a scenario outside KNOWN_FAILING fails.
 */
import { describeFailure, runScenario } from './run-scenario';
import { newSeed } from './random';
import { KNOWN_FAILING, SCENARIOS } from './scenarios';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const option = (name: string) => {
    const index = args.indexOf(name);
    return index < 0 ? undefined : args[index + 1];
  };
  const seed = process.env.FAULTS_SEED ? Number(process.env.FAULTS_SEED) : newSeed();
  const only = option('--only')?.split(',');
  const form = args.includes('--short') ? 'short' : 'long';
  const unknown = only?.filter((name) => !SCENARIOS.some((scenario) => scenario.name === name)) ?? [];
  if (unknown.length > 0) throw new Error(`no scenario named ${unknown.join(', ')}; scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  const chosen = SCENARIOS.filter((scenario) => (only ? only.includes(scenario.name) : args.includes('--all') || !(scenario.name in KNOWN_FAILING)));
  const total = chosen.reduce((sum, scenario) => sum + scenario.seconds[form], 0);
  console.log(`FAULTS_SEED=${seed}: ${chosen.length} scenario(s), ${form} form, about ${Math.ceil(total / 60)} min of faults plus start-up`);

  let failed = 0;
  for (const scenario of chosen) {
    const known = KNOWN_FAILING[scenario.name];
    const started = Date.now();
    const result = await runScenario(scenario, form, seed);
    const took = `${((Date.now() - started) / 1000).toFixed(0)} s`;
    if (result.report.ok) {
      console.log(`${result.report.summary} (${took})${known ? `  ← passes now: remove it from KNOWN_FAILING (${known})` : ''}`);
    } else {
      if (!known) failed++;
      console.log(`${result.report.summary} (${took})${known ? `  (known failing, ${known})` : ''}`);
      console.log(describeFailure(result).split('\n').slice(1, known ? 8 : undefined).join('\n'));
    }
  }
  console.log(`FAULTS_SEED=${seed}: ${failed === 0 ? 'no unexpected failure' : `${failed} unexpected failure(s)`}`);
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
