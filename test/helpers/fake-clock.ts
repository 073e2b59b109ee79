import type { Clock } from "../../server/domain/clock.js";

/**
 * A clock that only moves when the test says so, or, for short waits, when the
 * code waits. It records every sleep the test drives, so a test can wait for
 * the poller to finish a cycle (it then asks to sleep) and release the next
 * one with `advance`, without any real waiting.
 */
export class FakeClock implements Clock {
  /** Every sleep the test drives (longer than `autoAdvanceUpToMs`), in ms, in order. */
  readonly sleeps: number[] = [];
  private time: number;
  private sleepers: Array<{ until: number; wake: () => void }> = [];
  private onSleep: Array<() => void> = [];
  private readonly advanceListeners = new Set<(elapsedMs: number) => void>();
  private readonly autoAdvanceUpToMs: number;

  /**
   * With `autoAdvanceUpToMs`, a sleep that short (a rollout's poll interval)
   * ends on the next turn of the event loop, moving fake time to its end: a
   * rollout then runs its course in fake time while the long waits (the
   * poller's SLEEP_TIME, a TIMEOUT) stay the test's to release. Without it,
   * every sleep waits for `advance`.
   */
  constructor(start = Date.UTC(2026, 0, 1, 12, 0, 0), opts: { autoAdvanceUpToMs?: number } = {}) {
    this.time = start;
    this.autoAdvanceUpToMs = opts.autoAdvanceUpToMs ?? -1;
  }

  now(): number {
    return this.time;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    const auto = ms <= this.autoAdvanceUpToMs;
    if (!auto) this.sleeps.push(ms);
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const sleeper = { until: this.time + ms, wake: resolve };
      this.sleepers.push(sleeper);
      signal?.addEventListener("abort", () => {
        this.sleepers = this.sleepers.filter((s) => s !== sleeper);
        resolve();
      });
      if (auto) {
        // Not at once: whatever else this turn started (a webhook, a commit) runs first, as it would in real time.
        setImmediate(() => {
          if (this.sleepers.includes(sleeper)) this.advance(Math.max(0, sleeper.until - this.time));
        });
        return;
      }
      for (const notify of this.onSleep.splice(0)) notify();
    });
  }

  /** Resolves once `count` sleeps the test drives have been asked for (a cycle ends with one). */
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

  /** Calls `listener` with the time elapsed each time the clock moves (before the sleepers it made due wake); returns the unsubscribe. */
  onAdvance(listener: (elapsedMs: number) => void): () => void {
    this.advanceListeners.add(listener);
    return () => this.advanceListeners.delete(listener);
  }

  /** Moves time on and wakes every sleeper that is due. */
  advance(ms: number): void {
    this.time += ms;
    for (const listener of this.advanceListeners) listener(ms);
    const due = this.sleepers.filter((s) => s.until <= this.time);
    this.sleepers = this.sleepers.filter((s) => s.until > this.time);
    for (const s of due) s.wake();
  }
}
