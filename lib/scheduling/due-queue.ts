/** What a replica will try to claim, and when. */
export interface DueEntry {
  at: number;
  name: string;
  /** For a scheduled fire: the due time it claims. */
  due?: number;
  /** For a pending trigger: its member in the coordinator. */
  member?: string;
}

/**
 * A binary min-heap of due entries, so that waking for the earliest fire costs O(log n) whatever
 * the number of jobs. Entries are never removed early: whoever pops one checks it still holds.
 */
export class DueQueue {
  private readonly heap: DueEntry[] = [];

  get size(): number {
    return this.heap.length;
  }

  peek(): DueEntry | undefined {
    return this.heap[0];
  }

  clear(): void {
    this.heap.length = 0;
  }

  push(entry: DueEntry): void {
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent].at <= entry.at) break;
      heap[i] = heap[parent];
      i = parent;
    }
    heap[i] = entry;
  }

  /** Removes and returns every entry due at or before `now`. */
  popDue(now: number): DueEntry[] {
    const due: DueEntry[] = [];
    while (this.heap.length > 0 && this.heap[0].at <= now) due.push(this.pop());
    return due;
  }

  private pop(): DueEntry {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= heap.length) break;
        const right = left + 1;
        const child = right < heap.length && heap[right].at < heap[left].at ? right : left;
        if (heap[child].at >= last.at) break;
        heap[i] = heap[child];
        i = child;
      }
      heap[i] = last;
    }
    return top;
  }
}
