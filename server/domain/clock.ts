/** The one source of time: rollouts, timeouts and the poller read it; tests hand in a fake one, so no test sleeps. */
export interface Clock {
  now(): number;
  /** Resolves after `ms`, or at once when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The longest delay a Node timer holds (2³¹−1 ms, 24.8 days): a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  // A wait past what one timer holds (a 26-day cool-down, a 30-day approval) is slept in timers of at most that, up
  // to a deadline on the monotonic clock, so a change of the wall clock neither shortens nor stretches it.
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const until = performance.now() + ms;
      let timer = setTimeout(step, Math.min(Math.max(ms, 0), MAX_TIMER_MS));
      function step() {
        const left = until - performance.now();
        if (left > 0) timer = setTimeout(step, Math.min(left, MAX_TIMER_MS));
        else done();
      }
      function done() {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        resolve();
      }
      signal?.addEventListener("abort", done, { once: true });
    }),
};
