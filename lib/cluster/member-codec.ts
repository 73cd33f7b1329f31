import type { DepartureReason, MemberDeparture, MemberRecord, MemberReport, MemberRun } from './member-record.interface';

/**
 * How members are written in Redis (the `members`, `member-runs` and `departed` keys) and read
 * back. Reading is lenient: a member is what the cluster runs on, so an entry another program
 * mangled, or one written by a replica of an earlier version (none at all), reads as a worker
 * without labels rather than failing every replica's heartbeat.
 */
export function encodeReport(report: MemberReport): { info: string; runs: string } {
  return {
    info: JSON.stringify({ l: report.labels, w: report.worker ? 1 : 0, n: report.runs.length }),
    runs: JSON.stringify(report.runs.map((run) => [run.name, run.fencingToken])),
  };
}

export function decodeMember(id: string, beatAt: number, info: string | null | undefined, fallbackTtl: number): MemberRecord {
  const parsed = parse(info);
  const labels: Record<string, string> = {};
  if (parsed && typeof parsed.l === 'object' && parsed.l !== null && !Array.isArray(parsed.l)) {
    // Sorted by name: the script re-encodes them in its own order.
    for (const [key, value] of Object.entries(parsed.l as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (typeof value === 'string') labels[key] = value;
    }
  }
  const number = (value: unknown, fallback: number) => (typeof value === 'number' && Number.isFinite(value) ? value : fallback);
  return {
    id,
    labels,
    worker: parsed?.w !== 0,
    joinedAt: number(parsed?.j, beatAt),
    beatAt,
    sessionTtl: number(parsed?.t, fallbackTtl),
    runCount: number(parsed?.n, 0),
  };
}

export function decodeRuns(runs: string | null | undefined): MemberRun[] {
  const parsed: unknown = parseAny(runs);
  if (!Array.isArray(parsed)) return [];
  return parsed
    .filter((run): run is [string, number] => Array.isArray(run) && typeof run[0] === 'string' && typeof run[1] === 'number')
    .map(([name, fencingToken]) => ({ name, fencingToken }));
}

export function decodeDeparture(record: string, at: number): MemberDeparture | null {
  const parsed = parse(record);
  if (!parsed || typeof parsed.i !== 'string') return null;
  const reason: DepartureReason = parsed.r === 'shutdown' ? 'shutdown' : 'expired';
  return { id: parsed.i, at, reason };
}

function parse(text: string | null | undefined): Record<string, unknown> | null {
  const value = parseAny(text);
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

function parseAny(text: string | null | undefined): unknown {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** What a caller that reports nothing of itself is: a worker without labels nor runs. */
export const NO_REPORT: MemberReport = { labels: {}, worker: true, runs: [] };
