import type { Logger } from "pino";
import { outbound, redirected } from "./outbound.js";
import type { Metrics } from "../metrics.js";
import type { DeploymentHistory } from "../store/deployment-history.js";
import type { DeploymentRecord } from "../store/deployment-store.js";
import {
  driftMessage,
  failedMessage,
  imageUnavailableMessage,
  shellDate,
  updatedMessage,
  waitingForApprovalMessage,
  wouldDeployMessage,
  type AppriseMessage,
} from "./shepherd-texts.js";

export interface AppriseNotifierOptions {
  /** APPRISE_SIDECAR_URL. */
  url: string;
  hostname: string;
  timeZone?: string;
  history: Pick<DeploymentHistory, "findPreviousOutcome">;
  log: Logger;
  metrics: Metrics;
  now(): number;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

type Outcome = "updated" | "failed";

function outcomeOf(dep: DeploymentRecord): Outcome | undefined {
  // A skipped deployment changed nothing: Shepherd's "No updates to service" is not sent either.
  if (dep.status === "succeeded" && dep.updateSentAt) return "updated";
  if (dep.status === "failed" || dep.status === "rolled_back") return "failed";
  return undefined;
}

/**
 * Sends Shepherd's notifications to an Apprise sidecar, once per event: a
 * service updated to a digest, a digest that failed on a service, an image
 * that cannot be found. Shepherd sent the same failure every cycle; here a
 * repeat of the outcome just notified is dropped. Best effort: a sidecar that
 * is down is logged and counted, never retried, never fatal.
 */
export function createAppriseNotifier(opts: AppriseNotifierOptions) {
  const doFetch = opts.fetch ?? ((input, init) => fetch(input, init));
  const target = outbound(opts.url);
  const inFlight = new Set<Promise<void>>();
  // In memory: the record has no row for an image that was never found. A restart may repeat one.
  const unavailable = new Set<string>();

  function send(event: string, message: AppriseMessage, context: Record<string, unknown>): Promise<void> {
    const sending = (async () => {
      try {
        const res = await doFetch(target.url, {
          method: "POST",
          headers: { "content-type": "application/json", ...target.headers },
          body: JSON.stringify(message),
          redirect: "manual",
          signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
        });
        await res.body?.cancel().catch(() => undefined);
        const result = res.ok ? "sent" : "failed";
        opts.metrics.notifications.inc({ event, result });
        opts.log[res.ok ? "info" : "warn"]({ ...context, event, status: res.status }, `Apprise notification ${result}${redirected(res)}`);
      } catch (err) {
        opts.metrics.notifications.inc({ event, result: "failed" });
        opts.log.warn({ ...context, event, reason: (err as Error).message }, "Apprise notification could not be delivered");
      }
    })();
    inFlight.add(sending);
    void sending.finally(() => inFlight.delete(sending));
    return sending;
  }

  const date = () => shellDate(opts.now(), opts.timeZone);

  return {
    /** A deployer listener: notifies updated and failed, unless the previous outcome already said the same. */
    async deploymentFinished(dep: DeploymentRecord): Promise<void> {
      if (dep.status === "skipped" && dep.message?.startsWith("deployer.mode=notify") && dep.digest) {
        const image = `${dep.image}@${dep.digest}`;
        await send("would_deploy", wouldDeployMessage({ service: dep.service, hostname: opts.hostname, image, date: date() }), {
          deploymentId: dep.id,
        });
        return;
      }
      if (dep.trigger === "external") {
        const to = dep.pinnedImage ?? dep.image;
        const message = driftMessage({ service: dep.service, hostname: opts.hostname, from: dep.previousImage ?? "", to, date: date() });
        return send("drift", message, { deploymentId: dep.id, service: dep.service });
      }
      const outcome = outcomeOf(dep);
      if (!outcome) return;
      const target = dep.pinnedImage ?? (dep.digest ? `${dep.image}@${dep.digest}` : dep.image);
      const previous = opts.history.findPreviousOutcome(dep.service, dep.id);
      if (previous && outcomeOf(previous) === outcome && (previous.digest ?? previous.image) === (dep.digest ?? dep.image)) {
        opts.log.debug({ deploymentId: dep.id, service: dep.service }, "Apprise: same outcome for the same digest as last time; not sent again");
        return;
      }
      const context = { deploymentId: dep.id, service: dep.service };
      const message =
        outcome === "updated"
          ? updatedMessage({ service: dep.service, hostname: opts.hostname, from: dep.previousImage ?? "", to: target, date: date() })
          : failedMessage({ service: dep.service, hostname: opts.hostname, image: target, date: date() });
      await send(outcome, message, context);
    },

    /** A deployer listener for waits: a deployment that needs a person's approval. */
    async deploymentWaiting(dep: DeploymentRecord): Promise<void> {
      if (dep.status !== "awaiting_approval") return;
      const image = dep.digest ? `${dep.image}@${dep.digest}` : dep.image;
      const message = waitingForApprovalMessage({ service: dep.service, hostname: opts.hostname, image, deploymentId: dep.id, date: date() });
      await send("awaiting_approval", message, { deploymentId: dep.id, service: dep.service });
    },

    /** The poller could not resolve `image` for `service`; sent once until the image is found again. */
    async imageUnavailable(service: string, image: string): Promise<void> {
      const key = `${service}\n${image}`;
      if (unavailable.has(key)) return;
      unavailable.add(key);
      await send("image_unavailable", imageUnavailableMessage({ service, image, date: date() }), { service, image });
    },

    imageAvailable(service: string, image: string): void {
      unavailable.delete(`${service}\n${image}`);
    },

    /** Resolves when every notification under way has been answered (RUN_ONCE_AND_EXIT, tests). */
    async flush(): Promise<void> {
      while (inFlight.size) await Promise.allSettled([...inFlight]);
    },
  };
}

export type AppriseNotifier = ReturnType<typeof createAppriseNotifier>;
