/**
 * Collects the items added during one event-loop turn and hands them to `flush` together, so
 * that work finishing at the same moment costs one round trip instead of one each.
 */
export class TickBatcher<T, R> {
  private pending: { item: T; resolve: (result: R) => void; reject: (error: unknown) => void }[] = [];

  constructor(private readonly flush: (items: T[]) => Promise<R[]>) {}

  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      if (this.pending.length === 0) setImmediate(() => void this.drain());
      this.pending.push({ item, resolve, reject });
    });
  }

  private async drain(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    try {
      const results = await this.flush(batch.map((entry) => entry.item));
      batch.forEach((entry, index) => entry.resolve(results[index]));
    } catch (error) {
      batch.forEach((entry) => entry.reject(error));
    }
  }
}
