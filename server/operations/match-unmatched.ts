import type { Clock } from "../domain/clock.js";
import { familiarRepoTag, parseImageRef } from "../domain/image-ref.js";
import { automaticExclusion, servicesForPush } from "../domain/service-selection.js";
import { withDeadline } from "../engine/deadline.js";
import { deploymentsFor, type IngestDeps } from "./ingest-push.js";
import { SwarmUnavailableError } from "../engine/swarm-port.js";
import { requestMatchedDeployments } from "./request-deployment.js";

/** How many waiting pushes one pass matches; the next pass takes the rest. */
const BATCH = 100;
/** A pass may wait longer than a webhook, but a hung engine must not stop the loop. */
const MATCH_LIST_DEADLINE_MS = 10_000;

/**
 * Pushes that a webhook recorded while the engine did not answer wait in the
 * record (triggers.unmatched_since). Once the engine answers, each is matched
 * to the services running its image as the webhook would have matched it (the
 * token's service limit included) and deployed, oldest first, so the newest
 * push of an image ends up deployed. Poller or not, and across a restart: the
 * wait is in the database, and a pass runs at start and then every RETRY_MS.
 */
/** How often a pass runs. */
const RETRY_MS = 5000;

export function createUnmatchedPushes(deps: IngestDeps & { clock: Clock }) {
  let loop: { abort: AbortController; done: Promise<void> } | undefined;

  /** One pass; returns the number of deployments it queued. */
  async function runOnce(): Promise<number> {
    const waiting = deps.store.listUnmatched(BATCH);
    if (waiting.length === 0) return 0;
    let services;
    try {
      services = await withDeadline(deps.swarm.listServices(), MATCH_LIST_DEADLINE_MS, "the Docker engine");
    } catch (err) {
      if (err instanceof SwarmUnavailableError) return 0; // still down: the next pass tries again
      throw err;
    }
    let queued = 0;
    for (const trigger of waiting) {
      const allowed = trigger.allowedServices ? (JSON.parse(trigger.allowedServices) as string[]) : undefined;
      const running = servicesForPush(services, trigger.imageKey);
      const left = running.map((s) => automaticExclusion(s, deps, allowed));
      const selected = running.filter((_, i) => left[i] === undefined);
      // Told as the webhook's answer tells them: how many, for each reason; not the names of those outside the token.
      const leftAlone = Object.fromEntries(
        [...new Set(left.filter((r): r is string => r !== undefined))].map((r) => [r, left.filter((x) => x === r).length]),
      );
      const image = familiarRepoTag(parseImageRef(trigger.imageKey));
      const matched = requestMatchedDeployments(
        deps,
        trigger.id,
        deploymentsFor(
          selected,
          { ...trigger, image },
          `${trigger.kind} push of ${image} received while the engine did not answer, matched now; queued`,
        ),
        { coalesce: true },
      );
      if (!matched) continue;
      const rows = matched.deployments;
      if (rows.length === 0) {
        void deps.callbacks.triggerHadNothingToDo(trigger).catch((err) => deps.log.error({ err }, "callback failed"));
      }
      deps.log.info(
        { triggerId: trigger.id, image, deployments: rows.map((r) => r.id), ...(Object.keys(leftAlone).length ? { leftAlone } : {}) },
        "matched a push recorded while the engine did not answer",
      );
      queued += rows.length;
    }
    return queued;
  }

  return {
    runOnce,
    start(): void {
      if (loop) return;
      const abort = new AbortController();
      const run = async () => {
        while (!abort.signal.aborted) {
          await runOnce().catch((err) => deps.log.error({ err }, "matching waiting pushes failed"));
          await deps.clock.sleep(RETRY_MS, abort.signal);
        }
      };
      loop = { abort, done: run() };
    },
    async stop(): Promise<void> {
      loop?.abort.abort();
      await loop?.done;
      loop = undefined;
    },
  };
}

export type UnmatchedPushes = ReturnType<typeof createUnmatchedPushes>;
