import { InvalidJobOptionError } from '../errors';
import { checkLabels, Labels } from '../cluster/cluster.options';
import { MAX_HOSTS, type JobHosts } from '../cluster/hosts.options';
import { STRATEGY_NAME_PATTERN } from '../cluster/cluster.constants';
import { DEFAULT_CONTINUOUS_STRATEGY } from './continuous.constants';

/**
 * `@DistributedJob({ continuous })`: the handler runs on up to `max` replicas at once, chosen by
 * `strategy` among the live workers whose labels match `labels`, for as long as each is chosen.
 */
export interface ContinuousJobOptions {
  /** At most this many runs at once, cluster-wide (`1`: a leader). A whole number from 1 to 1,000. */
  max: number;
  /**
   * Which replicas run it: `'sticky'` (keeps its choice while the chosen live), `'spread'`
   * (fewest runs first), `'random'` (seeded by the job's name), or one registered with
   * `@RegisterPlacementStrategy`.
   * @default 'sticky'
   */
  strategy?: string;
  /** Only replicas carrying every one of these labels (their module's `labels`) are chosen. @default none */
  labels?: Record<string, string>;
}

/** `continuous` after validation. */
export interface ContinuousPlacement {
  readonly max: number;
  readonly strategy: string;
  readonly labels: Labels;
}

/** What a continuous job cannot have: it runs for as long as it is chosen, never at a time or on request. */
const EXCLUDED = ['cron', 'every', 'at', 'runOnStart', 'hosts', 'retry', 'initialDelay'] as const;

const SHAPE = '{ max, strategy?, labels? }';

/** Checks a job's `continuous` and what it excludes; the strategy's existence is checked by the explorer. */
export function defineContinuous(job: string, options: Record<string, unknown>): ContinuousPlacement | null {
  const continuous = options.continuous;
  if (continuous === undefined) return null;
  const fail = (reason: string): never => {
    throw new InvalidJobOptionError(job, 'continuous', continuous, reason);
  };
  if (typeof continuous !== 'object' || continuous === null || Array.isArray(continuous)) fail(`expected ${SHAPE}`);
  const { max, strategy, labels, ...rest } = continuous as Partial<ContinuousJobOptions>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) fail(`unknown field(s) ${unknown.map((key) => `"${key}"`).join(', ')}: expected ${SHAPE}`);
  if (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > MAX_HOSTS) fail(`"max" must be a whole number of runs from 1 to ${MAX_HOSTS}`);
  if (strategy !== undefined && (typeof strategy !== 'string' || !STRATEGY_NAME_PATTERN.test(strategy))) {
    fail('"strategy" must be the name of a placement strategy, such as \'sticky\', \'spread\' or \'random\'');
  }
  const required = checkLabels(labels, 'continuous', (_option, _value, reason) => fail(`"labels": ${reason}`));
  for (const option of EXCLUDED) {
    if (options[option] === undefined || options[option] === false) continue;
    throw new InvalidJobOptionError(
      job,
      option,
      options[option],
      `a continuous job runs for as long as its replica is chosen, so it takes no "${option}"` +
        (option === 'hosts' ? ' (choose its replicas with continuous.labels and continuous.strategy)' : option === 'retry' ? ' (a run that ends is restarted after a backoff)' : '') +
        `: remove "${option}" or "continuous"`,
    );
  }
  if (options.overlap !== undefined && options.overlap !== 'skip') {
    throw new InvalidJobOptionError(job, 'overlap', options.overlap, 'a continuous job runs up to continuous.max runs at once; its overlap is \'skip\' (remove "overlap")');
  }
  return { max: max!, strategy: strategy ?? DEFAULT_CONTINUOUS_STRATEGY, labels: required };
}

/** The placement of a continuous job, in the form `HostPlacement` chooses by. */
export function continuousHosts(continuous: ContinuousPlacement): JobHosts {
  return { labels: continuous.labels, strategy: continuous.strategy, max: continuous.max };
}

/** An unknown strategy name fails bootstrap, naming the job, the option and the value. */
export function checkContinuousStrategy(job: string, continuous: ContinuousPlacement | null, raw: unknown, known: (name: string) => boolean, names: () => string[]): void {
  if (!continuous || known(continuous.strategy)) return;
  throw new InvalidJobOptionError(
    job,
    'continuous',
    raw,
    `unknown placement strategy '${continuous.strategy}': expected one of ${names().map((name) => `'${name}'`).join(', ')} (register your own with @RegisterPlacementStrategy)`,
  );
}
