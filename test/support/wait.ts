/**
 * Records events as they arrive and lets a test wait until what it expects has arrived,
 * re-checking on each new event instead of sleeping.
 */
export class EventLog<T> {
  readonly events: T[] = [];
  private readonly waiters = new Set<() => void>();

  push(event: T): void {
    this.events.push(event);
    this.waiters.forEach((check) => check());
  }

  /** Resolves with the first truthy value of `condition(events)`, checked now and after each event. */
  until<R>(what: string, condition: (events: T[]) => R | undefined | false | null, timeoutMs = 30_000): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const check = () => {
        const value = condition(this.events);
        if (!value) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(value);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }
}

/**
 * Resolves with `read()`'s value once `done` holds for it, read again every 20 ms: for state that
 * announces no event (a coordinator's description). A wait on a condition, not a sleep.
 */
export async function eventually<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
