import type { Clock } from "../../server/domain/clock.js";

/**
 * A clock that only moves when the test says so. It records every sleep, so a
 * test can wait for the poller to finish a cycle (it then asks to sleep) and
 * release the next one with `advance`, without any real waiting.
 */
export class FakeClock implements Clock {
  /** Every sleep asked for, in ms, in order. */
  readonly sleeps: number[] = [];
  private time: number;
  private sleepers: Array<{ until: number; wake: () => void }> = [];
  private onSleep: Array<() => void> = [];

  private readonly realSleepsUpToMs?: number;

  /**
   * With `realSleepsUpToMs`, a sleep that short (a rollout's poll interval in
   * the test server, while the fake swarm moves on a real timer) passes in real
   * time and leaves fake time where it is, unrecorded: the test then drives
   * only the long waits (the poller's SLEEP_TIME), and every timestamp stays
   * the one the test set.
   */
  constructor(start = Date.UTC(2026, 0, 1, 12, 0, 0), opts: { realSleepsUpToMs?: number } = {}) {
    this.time = start;
    this.realSleepsUpToMs = opts.realSleepsUpToMs;
  }

  now(): number {
    return this.time;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.realSleepsUpToMs !== undefined && ms <= this.realSleepsUpToMs) {
      return new Promise((resolve) => setTimeout(resolve, ms));
    }
    this.sleeps.push(ms);
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const sleeper = { until: this.time + ms, wake: resolve };
      this.sleepers.push(sleeper);
      signal?.addEventListener("abort", () => {
        this.sleepers = this.sleepers.filter((s) => s !== sleeper);
        resolve();
      });
      for (const notify of this.onSleep.splice(0)) notify();
    });
  }

  /** Resolves once `count` sleeps in all have been asked for (a cycle ends with one). */
  async sleepCount(count: number, timeoutMs = 5000): Promise<void> {
    const started = Date.now();
    while (this.sleeps.length < count) {
      if (Date.now() - started > timeoutMs) throw new Error(`expected ${count} sleeps, got ${JSON.stringify(this.sleeps)}`);
      await new Promise<void>((resolve) => {
        this.onSleep.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  /** Moves time on and wakes every sleeper that is due. */
  advance(ms: number): void {
    this.time += ms;
    const due = this.sleepers.filter((s) => s.until <= this.time);
    this.sleepers = this.sleepers.filter((s) => s.until > this.time);
    for (const s of due) s.wake();
  }
}
