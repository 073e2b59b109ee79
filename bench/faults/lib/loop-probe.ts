import { sleep } from "../../lib/stats.js";

/**
 * Watches the server while a fault scenario runs: its own event-loop delay
 * (prom-client's `nodejs_eventloop_lag_max_seconds`, the longest delay since
 * the previous scrape, read every `everyMs`) and whether the process is
 * still alive.
 */
export function watchLoop(url: string, alive: () => boolean, everyMs = 250) {
  const stalls: number[] = [];
  let running = true;
  let died = false;
  let primed = false;
  const done = (async () => {
    while (running) {
      if (!alive()) {
        died = true;
        break;
      }
      try {
        const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
        const max = /^deployer_nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(text)?.[1];
        // The first read covers everything since the process started (loading, migrations): not a stall of the run.
        if (max !== undefined && primed) stalls.push(Number(max) * 1000);
        primed = true;
      } catch {
        // the server may be restarting; its liveness is checked above
      }
      await sleep(everyMs);
    }
  })();
  return {
    async stop(): Promise<{ longestStallMs: number; samples: number; died: boolean }> {
      running = false;
      await done;
      return { longestStallMs: stalls.length ? Math.max(...stalls) : Number.NaN, samples: stalls.length, died };
    },
  };
}
