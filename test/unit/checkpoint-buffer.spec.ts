import { CheckpointBuffer } from '../../lib/checkpoint/checkpoint.buffer';
import type { CheckpointSaveOutcome } from '../../lib/checkpoint/checkpoint.interface';
import { EventLog } from '../support/wait';

/**
 * The buffer's own logic, with a sink that stands for the coordinator and can be told to fail
 * (the Redis paths are in checkpoint.spec.ts and the coordinator contract).
 */
describe('CheckpointBuffer', () => {
  type Event = { type: 'write' | 'stale' | 'failed' | 'recovered'; state?: string; final?: boolean };

  function buffer(maxUpdates: number, interval: number) {
    const events = new EventLog<Event>();
    const sink = { fail: false, answer: { status: 'saved' } as CheckpointSaveOutcome };
    const written: string[] = [];
    const subject = new CheckpointBuffer(
      async (state) => {
        events.push({ type: 'write', state });
        if (sink.fail) throw new Error('Connection is closed.');
        written.push(state);
        return sink.answer;
      },
      { maxUpdates, interval },
      {
        stale: () => events.push({ type: 'stale' }),
        failed: (_error, final) => events.push({ type: 'failed', final }),
        recovered: () => events.push({ type: 'recovered' }),
      },
    );
    return { subject, events, sink, written };
  }

  it('queues one write behind the one in flight, however many updates come meanwhile', async () => {
    let release!: () => void;
    const writes: string[] = [];
    const subject = new CheckpointBuffer(
      async (state) => {
        writes.push(state);
        if (writes.length === 1) await new Promise<void>((resolve) => (release = resolve));
        return { status: 'saved' };
      },
      { maxUpdates: 1, interval: 60_000 },
      { stale: () => undefined, failed: () => undefined, recovered: () => undefined },
    );
    // The first update starts a write that Redis has not answered yet; 10,000 more come meanwhile.
    for (let i = 1; i <= 10_001; i++) subject.update(String(i), i);
    expect(writes).toEqual(['1']);
    // Every flush asked for meanwhile is that one queued flush, not one more waiting callback each.
    expect(subject.flush()).toBe(subject.flush());
    release();
    await subject.close();
    // One follow-up write with the latest state, not one per update.
    expect(writes).toEqual(['1', '10001']);
  });

  it('writes about once per maxUpdates updates while writes are slower than updates', async () => {
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    let writes = 0;
    const subject = new CheckpointBuffer(
      async () => {
        writes++;
        for (let i = 0; i < 25; i++) await turn(); // Redis answers after more updates than maxUpdates
        return { status: 'saved' };
      },
      { maxUpdates: 10, interval: 60_000 },
      { stale: () => undefined, failed: () => undefined, recovered: () => undefined },
    );
    for (let i = 1; i <= 1_000; i++) {
      subject.update(String(i), i);
      await turn();
    }
    await subject.close();
    // 1,000 updates, a write at most every 10 (and the last at close); piled-up flushes wrote far more.
    expect(writes).toBeLessThanOrEqual(101);
  });

  it('writes the latest state after maxUpdates updates, and what is left at close', async () => {
    const { subject, written } = buffer(3, 60_000);
    for (const state of ['1', '2', '3', '4']) subject.update(state, 0);
    await subject.close();
    expect(written).toEqual(['3', '4']);
    expect(subject.update('5', 0)).toBe(false);
    await subject.close(); // idempotent
    expect(written).toEqual(['3', '4']);
  });

  it('retries a failed write at the next flush point, logging once per episode, and never in a loop', async () => {
    const { subject, events, sink, written } = buffer(2, 100);
    sink.fail = true;
    subject.update('1', 0);
    subject.update('2', 0); // maxUpdates: written, fails
    await events.until('the failure', (all) => all.find((e) => e.type === 'failed'));
    // The next flush point is the interval (no update came): it fails again, silently.
    await events.until('the retry', (all) => all.filter((e) => e.type === 'write').length >= 2);
    expect(events.events.filter((e) => e.type === 'failed')).toHaveLength(1);
    sink.fail = false;
    await events.until('the recovery', (all) => all.find((e) => e.type === 'recovered'));
    expect(written).toEqual(['2']);
    await subject.close();
    expect(written).toEqual(['2']);
  });

  it('drops everything after a refusal (stale), and reports it once', async () => {
    const { subject, events, sink, written } = buffer(1, 60_000);
    sink.answer = { status: 'stale', floor: 9 };
    subject.update('1', 0);
    subject.update('2', 0);
    subject.update('3', 0);
    await subject.close();
    expect(events.events.filter((e) => e.type === 'stale')).toHaveLength(1);
    expect(written).toEqual(['1']);
    expect(subject.fenced).toBe(true);
  });

  it('tries the final write once more at close, and reports its loss', async () => {
    const { subject, events, sink } = buffer(100, 60_000);
    sink.fail = true;
    subject.update('1', 0);
    await subject.close();
    expect(events.events.filter((e) => e.type === 'failed')).toEqual([{ type: 'failed', final: true }]);
  });
});
