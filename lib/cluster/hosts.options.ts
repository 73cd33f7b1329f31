import { InvalidJobOptionError } from '../errors';
import { checkLabels, Labels } from './cluster.options';
import { STRATEGY_NAME_PATTERN } from './cluster.constants';

/**
 * Which replicas may run a job's fires (`@DistributedJob({ hosts })`): those whose labels match
 * `labels`, and, with `strategy` or `max`, only the `max` of them the strategy chooses.
 */
export interface JobHostsOptions {
  /** Every one of these labels must be on a replica (its module's `labels`) for it to run the job. */
  labels?: Record<string, string>;
  /**
   * The placement strategy that chooses among the matching live workers: `'spread'` (fewest runs
   * first), `'sticky'` (keeps its choice while the chosen live: with `max: 1`, a leader),
   * `'random'` (seeded by the job's name), or one registered with `@RegisterPlacementStrategy`.
   * @default 'spread' when `max` is set; none otherwise (every matching worker may run it)
   */
  strategy?: string;
  /** At most this many replicas are chosen (mgmt's MaxCount). @default 1 when `strategy` is set */
  max?: number;
}

/** `hosts` after validation; `strategy` null: every matching worker may claim. */
export interface JobHosts {
  readonly labels: Labels;
  readonly strategy: string | null;
  readonly max: number;
}

/** As mgmt's DefaultMaxCount. */
export const DEFAULT_MAX_HOSTS = 1;
export const MAX_HOSTS = 1_000;

/** Checks the shape of a job's `hosts`; whether its strategy exists is checked against the registry (`checkHostsStrategy`). */
export function defineHosts(job: string, hosts: unknown): JobHosts | null {
  if (hosts === undefined) return null;
  const fail = (reason: string): never => {
    throw new InvalidJobOptionError(job, 'hosts', hosts, reason);
  };
  if (typeof hosts !== 'object' || hosts === null || Array.isArray(hosts)) fail('expected { labels?, strategy?, max? }');
  const { labels, strategy, max, ...rest } = hosts as JobHostsOptions;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) fail(`unknown field(s) ${unknown.map((key) => `"${key}"`).join(', ')}: expected { labels?, strategy?, max? }`);
  const required = checkLabels(labels, 'hosts', (_option, _value, reason) => fail(`"labels": ${reason}`));
  if (strategy !== undefined && (typeof strategy !== 'string' || !STRATEGY_NAME_PATTERN.test(strategy))) {
    fail('"strategy" must be the name of a placement strategy, such as \'spread\', \'sticky\' or \'random\'');
  }
  if (max !== undefined && (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > MAX_HOSTS)) {
    fail(`"max" must be a whole number of replicas from 1 to ${MAX_HOSTS}`);
  }
  const chooses = strategy !== undefined || max !== undefined;
  return { labels: required, strategy: chooses ? (strategy ?? 'spread') : null, max: chooses ? (max ?? DEFAULT_MAX_HOSTS) : Infinity };
}

/** An unknown strategy name fails bootstrap, naming the job, the option and the value. */
export function checkHostsStrategy(job: string, hosts: JobHosts | null, raw: unknown, known: (name: string) => boolean, names: () => string[]): void {
  if (!hosts?.strategy || known(hosts.strategy)) return;
  throw new InvalidJobOptionError(
    job,
    'hosts',
    raw,
    `unknown placement strategy '${hosts.strategy}': expected one of ${names().map((name) => `'${name}'`).join(', ')} (register your own with @RegisterPlacementStrategy)`,
  );
}
