import type { Logger } from '@nestjs/common';
import type { Coordinator } from '../coordination/coordinator.interface';
import { InvalidCheckpointError } from '../errors/invalid-checkpoint.error';
import { CheckpointBuffer } from './checkpoint.buffer';
import { MAX_CHECKPOINT_BYTES } from './checkpoint.constants';
import { JsonValue, LastCheckpoint, ResolvedCheckpointOptions, StoredCheckpoint, toLastCheckpoint } from './checkpoint.interface';

/** One run's checkpoints: what it starts from, and where its updates go. */
export interface RunCheckpoint {
  /** The job's last flushed checkpoint when the run started (`ctx.lastCheckpoint`). */
  readonly last: LastCheckpoint | null;
  /** `ctx.checkpoint`: resolves once buffered; rejects with `InvalidCheckpointError` only. */
  save(state: JsonValue): Promise<void>;
  /** Flushes what is buffered, at the run's end (its abort at shutdown included). Never rejects. */
  close(): Promise<void>;
}

/** What a run needs to open its checkpoints: its claim's reading of the job's checkpoint, if any. */
export interface CheckpointClaim {
  fencingToken: number;
  /**
   * The job's checkpoint read atomically with the claim (claim.lua): null for none. Undefined when
   * the lease came another way (a task's lease, or a lease adopted after a lost claim reply): it
   * is read then, one extra round trip for those runs only.
   */
  checkpoint?: StoredCheckpoint | null;
}

/** Told of each flush the coordinator took (`saved`), in flush order: the state's JSON and its savedAt. */
export type CheckpointSaved = (state: string, savedAt: number) => void;

/** Opens the checkpoints of the runs of one replica. */
export class RunCheckpoints {
  constructor(
    private readonly coordinator: Coordinator,
    private readonly logger: Logger,
    private readonly defaults: ResolvedCheckpointOptions,
  ) {}

  /**
   * Rejects only when the job's checkpoint had to be read (see `CheckpointClaim.checkpoint`) and
   * could not be: the run must not start without it. `saved` hears of each flush the coordinator
   * took (the run's records copy it to its task); never of a refused one.
   */
  async open(name: string, claim: CheckpointClaim, options: Partial<ResolvedCheckpointOptions> = {}, saved?: CheckpointSaved): Promise<RunCheckpoint> {
    let stored = claim.checkpoint;
    if (stored === undefined) {
      try {
        const read = await this.coordinator.readCheckpoint(name);
        stored = read === 'unknown' ? null : read;
      } catch (error) {
        throw new Error(`Job "${name}": its last checkpoint could not be read, so the run did not start: ${errorMessage(error)}`, { cause: error });
      }
    }
    const last = stored ? toLastCheckpoint(stored) : null;
    const { fencingToken } = claim;
    const { logger } = this;
    const run = `the run with fencing token ${fencingToken}`;
    const buffer = new CheckpointBuffer(
      async (state, savedAt) => {
        const outcome = await this.coordinator.saveCheckpoint(name, fencingToken, state, savedAt);
        if (outcome.status === 'saved' && saved) {
          try {
            saved(state, savedAt);
          } catch (error) {
            // Never a failed flush: the coordinator has it.
            logger.error(`Job "${name}": a checkpoint of ${run} was written but could not be recorded: ${errorMessage(error)}`);
          }
        }
        return outcome;
      },
      { ...this.defaults, ...options },
      {
        stale: (floor) =>
          logger.warn(
            `Job "${name}": a checkpoint of ${run} was refused: the job's checkpoint is fenced at token ${floor} ` +
              `(a newer run took the job over, or the checkpoint was cleared). The checkpoints of this run are dropped from now on.`,
          ),
        failed: (error, final) =>
          final
            ? logger.error(`Job "${name}": the last checkpoint of ${run} could not be written at its end, and is lost: ${errorMessage(error)}`)
            : logger.warn(`Job "${name}": a checkpoint of ${run} could not be written (${errorMessage(error)}); it is tried again at the next flush.`),
        recovered: () => logger.log(`Job "${name}": the checkpoints of ${run} are written again.`),
      },
    );
    let warnedLate = false;
    return {
      last,
      save: async (state: JsonValue) => {
        const json = serialize(name, state);
        if (!buffer.update(json, this.coordinator.clock.now()) && !buffer.fenced && !warnedLate) {
          warnedLate = true;
          logger.warn(`Job "${name}": ${run} called ctx.checkpoint after it ended (its handler ignored ctx.signal?): dropped.`);
        }
      },
      close: () => buffer.close(),
    };
  }
}

/** The state's JSON text, or an `InvalidCheckpointError` saying why it cannot be stored. */
export function serialize(job: string, state: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(state);
  } catch (error) {
    throw new InvalidCheckpointError(job, `it is not JSON-serialisable: ${errorMessage(error)}`);
  }
  if (json === undefined) throw new InvalidCheckpointError(job, `it is not JSON-serialisable: ${typeof state} has no JSON form`);
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes > MAX_CHECKPOINT_BYTES) {
    throw new InvalidCheckpointError(job, `its JSON is ${bytes} bytes, more than the ${MAX_CHECKPOINT_BYTES} bytes (512 KB) a checkpoint may hold`);
  }
  return json;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
