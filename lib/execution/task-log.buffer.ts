import { Buffer } from 'node:buffer';

/**
 * The log lines of one running task, kept within `maxBytes`: when a line would exceed the bound,
 * the oldest lines are dropped and the log starts with a marker that counts them.
 */
export class TaskLogBuffer {
  private readonly lines: string[] = [];
  private bytes = 0;
  private dropped = 0;
  /** Counts appended lines; a write of the log is good up to the version it took. */
  private version = 0;
  private writtenVersion = 0;

  constructor(private readonly maxBytes: number) {}

  append(level: string, message: unknown): void {
    let line = `${new Date().toISOString()} ${level.toUpperCase()} ${typeof message === 'string' ? message : safeJson(message)}`;
    if (Buffer.byteLength(line) > this.maxBytes) line = truncate(line, this.maxBytes);
    this.lines.push(line);
    this.bytes += Buffer.byteLength(line) + 1;
    while (this.bytes > this.maxBytes && this.lines.length > 1) {
      this.bytes -= Buffer.byteLength(this.lines.shift()!) + 1;
      this.dropped++;
    }
    this.version++;
  }

  /** True while lines have arrived that no successful write has stored yet. */
  get dirty(): boolean {
    return this.version !== this.writtenVersion;
  }

  /** Call once a write of what `take()` returned has succeeded. */
  written(version: number): void {
    this.writtenVersion = Math.max(this.writtenVersion, version);
  }

  /** The log as stored (the marker if lines were dropped, then the kept lines) and its version. */
  take(): { content: string; droppedLines: number; version: number } {
    const marker = this.dropped > 0 ? `[${this.dropped} earlier line(s) dropped to keep the log within ${this.maxBytes} bytes]\n` : '';
    return { content: marker + this.lines.join('\n'), droppedLines: this.dropped, version: this.version };
  }
}

function truncate(line: string, maxBytes: number): string {
  const suffix = ' [truncated]';
  return Buffer.from(line).subarray(0, maxBytes - suffix.length).toString() + suffix;
}

function safeJson(value: unknown): string {
  if (value instanceof Error) return value.stack ?? value.message;
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}
