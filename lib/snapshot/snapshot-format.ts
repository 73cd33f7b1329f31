import type { ExportedJob } from '../coordination/coordinator.interface';
import { SnapshotFormatError } from '../errors/snapshot-format.error';

/**
 * A snapshot as this version of the library works with it: every job's shared state, when and
 * by whom it was read. Whatever format a stored snapshot has, its decoder gives this.
 */
export interface Snapshot {
  /** The format it was stored in. */
  format: number;
  /** The coordinator's clock when the state was read (epoch ms). */
  writtenAt: number;
  /** The instance that wrote it. */
  writtenBy: string;
  /** The key prefix whose jobs it holds. */
  prefix: string;
  /** The coordinator's change version and epoch when it was read. */
  version: string;
  epoch: string;
  /**
   * Written at shutdown by the last live replica, after its runs ended: nothing ran after it
   * was read, so a restore from it may let the missed-run policies serve the due times that
   * came since (a snapshot that is not final may be older than runs made after it).
   */
  final: boolean;
  jobs: ExportedJob[];
}

/** The format `encodeSnapshot` writes. */
export const SNAPSHOT_FORMAT = 1;

/**
 * Format 1: JSON `{ format: 1, writtenAt, writtenBy, prefix, version, epoch, final?, jobs: [...] }`,
 * each job as `ExportedJob`. `final` was added within format 1: a reader that does not know it
 * takes the snapshot as not final, which only skips more (never runs a due time twice).
 */
interface SnapshotV1 {
  format: 1;
  writtenAt: number;
  writtenBy: string;
  prefix: string;
  version: string;
  epoch: string;
  final?: boolean;
  jobs: ExportedJob[];
}

type Decoder = (document: Record<string, unknown>, location: string) => Snapshot;

/**
 * One decoder per format this library has ever written, never removed: a snapshot written by an
 * older version is read by a newer one. A new format adds a decoder (and `encodeSnapshot` moves
 * to it); the older ones map what they stored onto `Snapshot`.
 */
const DECODERS: Record<number, Decoder> = {
  1: decodeV1,
};

/** The formats this version reads. */
export function readableSnapshotFormats(): number[] {
  return Object.keys(DECODERS).map(Number);
}

export function encodeSnapshot(snapshot: Omit<Snapshot, 'format'>): string {
  const document: SnapshotV1 = { format: SNAPSHOT_FORMAT, ...snapshot };
  return JSON.stringify(document);
}

/** Decodes a stored snapshot of any known format; a `SnapshotFormatError` names the format and `location`. */
export function decodeSnapshot(text: string, location: string): Snapshot {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new SnapshotFormatError(location, undefined, `it is not JSON (${(error as Error).message})`);
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    throw new SnapshotFormatError(location, undefined, 'it is not a JSON object');
  }
  const format = (document as { format?: unknown }).format;
  const decoder = typeof format === 'number' ? DECODERS[format] : undefined;
  if (!decoder) {
    throw new SnapshotFormatError(
      location,
      format,
      `its format is ${JSON.stringify(format)}, and this version of nestjs-distributed-scheduler reads format(s) ${readableSnapshotFormats().join(', ')} ` +
        '(a snapshot written by a newer version? Upgrade, or move the snapshot away)',
    );
  }
  return decoder(document as Record<string, unknown>, location);
}

function decodeV1(document: Record<string, unknown>, location: string): Snapshot {
  const fail = (what: string): never => {
    throw new SnapshotFormatError(location, 1, `format 1 expects ${what}`);
  };
  const { writtenAt, writtenBy, prefix, version, epoch, jobs } = document;
  if (typeof writtenAt !== 'number') fail('"writtenAt" to be a number');
  if (typeof writtenBy !== 'string') fail('"writtenBy" to be a string');
  if (typeof prefix !== 'string') fail('"prefix" to be a string');
  if (!Array.isArray(jobs)) fail('"jobs" to be an array');
  (jobs as unknown[]).forEach((job, index) => {
    const j = job as Partial<ExportedJob> | null;
    if (typeof j !== 'object' || j === null || typeof j.name !== 'string') return fail(`jobs[${index}] to be a job with a name`);
    if (typeof j.definition !== 'object' || j.definition === null) fail(`jobs[${index}] ("${j.name}") to have a definition`);
    if (typeof j.rev !== 'number' || typeof j.fence !== 'number' || typeof j.paused !== 'boolean') {
      fail(`jobs[${index}] ("${j.name}") to have a numeric rev and fence and a boolean paused`);
    }
  });
  return {
    format: 1,
    writtenAt: writtenAt as number,
    writtenBy: writtenBy as string,
    prefix: prefix as string,
    version: String(version ?? '0'),
    epoch: String(epoch ?? ''),
    final: document.final === true,
    jobs: (jobs as ExportedJob[]).map((job) => ({
      ...job,
      superseded: Array.isArray(job.superseded) ? job.superseded : [],
      served: job.served ?? null,
      lastRun: job.lastRun ?? null,
      skippedLate: job.skippedLate ?? 0,
      locked: job.locked ?? null,
      checkpoint: job.checkpoint ?? null,
      base: job.base ?? null,
      due: job.due ?? null,
    })),
  };
}
