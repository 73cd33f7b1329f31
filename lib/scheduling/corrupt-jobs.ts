import type { Logger } from '@nestjs/common';
import type { CorruptKey } from '../coordination/coordinator.interface';
import { CorruptJobError } from '../errors/corrupt-job.error';

/** A corrupt job's keys are read again after this long, then twice as long each time it is still corrupt… */
const FIRST_RECHECK_MS = 1_000;
/** …up to this. */
const MAX_RECHECK_MS = 30_000;

interface Episode {
  key: string;
  problem: string;
  /** The wait before the next re-read. */
  delayMs: number;
  timer?: NodeJS.Timeout;
}

/**
 * Jobs of this replica whose keys hold what no script wrote (edited by hand, or by another
 * program). Such a job is left alone: the orchestrator claims none of its fires, and its keys are
 * read again after a backoff (1 s doubling up to 30 s), so a bad key costs Redis a read now and
 * then, not a retry loop. An episode is logged once, naming the job, the key and what is wrong
 * (again only if what is wrong changes), and its end once, when the key was repaired or deleted.
 */
export class CorruptJobs {
  private readonly episodes = new Map<string, Episode>();

  constructor(
    private readonly logger: Logger,
    /** Reads the job's keys again (a resync of that job). */
    private readonly recheck: (name: string) => void,
  ) {}

  has(name: string): boolean {
    return this.episodes.has(name);
  }

  /** Records a corrupt key; answers the error to report if it starts an episode (or says something new), else null. */
  found({ name, key, problem }: CorruptKey): CorruptJobError | null {
    let episode = this.episodes.get(name);
    const news = !episode || episode.key !== key || episode.problem !== problem;
    if (!episode) this.episodes.set(name, (episode = { key, problem, delayMs: FIRST_RECHECK_MS }));
    Object.assign(episode, { key, problem });
    if (!episode.timer) {
      const current = episode;
      current.timer = setTimeout(() => {
        current.timer = undefined;
        current.delayMs = Math.min(current.delayMs * 2, MAX_RECHECK_MS);
        this.recheck(name);
      }, current.delayMs);
      current.timer.unref();
    }
    if (!news) return null;
    const error = new CorruptJobError(name, key, problem);
    this.logger.error(`${error.message} Its keys are read again in ${episode.delayMs / 1000} s, then less and less often (every ${MAX_RECHECK_MS / 1000} s at most).`);
    return error;
  }

  /** The job's keys read well: ends its episode, if it had one. */
  healthy(name: string): void {
    const episode = this.episodes.get(name);
    if (!episode) return;
    clearTimeout(episode.timer);
    this.episodes.delete(name);
    this.logger.log(`Job "${name}": its keys hold valid data again (key "${episode.key}" was repaired or deleted); it is scheduled again.`);
  }

  clear(): void {
    for (const episode of this.episodes.values()) clearTimeout(episode.timer);
    this.episodes.clear();
  }
}
