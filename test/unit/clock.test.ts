/** The system clock's sleep, on vitest's fake timers (Node's timers and its monotonic clock, both faked): no test waits. */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { MAX_TIMER_MS, systemClock } from "../../server/domain/clock.js";

const day = 86_400_000;

describe("systemClock.sleep", () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance", "Date"] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("sleeps the whole of a wait longer than a timer can hold (24.8 days), not a millisecond", async () => {
    for (const ms of [26 * day, 30 * day, MAX_TIMER_MS + 1, 200 * day]) {
      let woke = false;
      void systemClock.sleep(ms).then(() => (woke = true));
      await vi.advanceTimersByTimeAsync(1000);
      expect(woke, `${ms} ms, after a second`).toBe(false);
      await vi.advanceTimersByTimeAsync(ms - 1001);
      expect(woke, `${ms} ms, a millisecond before`).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(woke, `${ms} ms`).toBe(true);
    }
  });

  it("wakes at once when its signal aborts, a long wait too, and after a zero wait only once the timers ran", async () => {
    const controller = new AbortController();
    let woke = false;
    void systemClock.sleep(40 * day, controller.signal).then(() => (woke = true));
    await vi.advanceTimersByTimeAsync(30 * day);
    expect(woke).toBe(false);
    controller.abort();
    await Promise.resolve();
    expect(woke).toBe(true);
    let zero = false;
    void systemClock.sleep(0).then(() => (zero = true));
    await Promise.resolve();
    await Promise.resolve();
    expect(zero, "a zero wait still lets the event loop turn").toBe(false);
    await vi.advanceTimersByTimeAsync(0);
    expect(zero).toBe(true);
  });
});
