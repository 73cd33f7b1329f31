import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { SnapshotMeta, SnapshotStore, StoredSnapshot } from './snapshot-store.interface';

/**
 * Snapshots in files: the newest in `file`, the older ones in `file.1`, `file.2`, … up to
 * `keep - 1`. A snapshot is written to a temporary file in the same directory, flushed to disk,
 * and renamed over `file`, so `file` always holds a whole snapshot (the old one until the rename).
 * One file holds one prefix's snapshots: the reader refuses a snapshot of another prefix.
 */
export class FileSnapshotStore implements SnapshotStore {
  readonly path: string;

  constructor(
    file: string,
    private readonly keep: number,
  ) {
    this.path = resolve(file);
  }

  get description(): string {
    return `file "${this.path}"`;
  }

  async save(text: string, _meta: SnapshotMeta): Promise<void> {
    await fs.mkdir(dirname(this.path), { recursive: true });
    const temporary = `${this.path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    const handle = await fs.open(temporary, 'w');
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await this.rotate();
      await fs.rename(temporary, this.path);
    } catch (error) {
      await fs.rm(temporary, { force: true });
      throw error;
    }
  }

  async readNewest(_prefix: string): Promise<StoredSnapshot | null> {
    try {
      return { text: await fs.readFile(this.path, 'utf8'), location: this.description };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  /** `file.(keep-2)` → `file.(keep-1)`, …, `file.1` → `file.2`, then `file` is linked as `file.1` (it stays in place until the rename). */
  private async rotate(): Promise<void> {
    if (this.keep <= 1) return;
    await fs.rm(`${this.path}.${this.keep - 1}`, { force: true });
    for (let i = this.keep - 2; i >= 1; i--) {
      await fs.rename(`${this.path}.${i}`, `${this.path}.${i + 1}`).catch(ignoreMissing);
    }
    await fs.link(this.path, `${this.path}.1`).catch(async (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return;
      // A file system without hard links: a copy does as well.
      await fs.copyFile(this.path, `${this.path}.1`);
    });
  }
}

function ignoreMissing(error: NodeJS.ErrnoException): void {
  if (error.code !== 'ENOENT') throw error;
}
