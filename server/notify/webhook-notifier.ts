import { createHmac } from "node:crypto";
import { outbound, redirected } from "./outbound.js";
import type { Logger } from "pino";
import type { Metrics } from "../metrics.js";
import type { DeploymentRecord } from "../store/deployment-store.js";

export interface WebhookNotifierOptions {
  /** DEPLOYER_NOTIFY_WEBHOOK_URL. */
  url: string;
  /** DEPLOYER_NOTIFY_WEBHOOK_SECRET: the HMAC key a receiver verifies the body with. */
  secret: string;
  log: Logger;
  metrics: Metrics;
  now(): number;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

export type WebhookEvent = "deployment.finished" | "deployment.waiting";

/** The header a receiver checks: `sha256=` and the hex HMAC-SHA256 of the raw body, as GitHub signs its webhooks. */
export const SIGNATURE_HEADER = "x-deployer-signature";

export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/**
 * A generic JSON webhook: every final status and every wait for a policy's
 * gate (approval, window, cool-down) is POSTed as
 * `{"event", "at", "deployment": {…}}`, signed with the shared secret so the
 * receiver can tell it came from this server. Best effort, like Apprise: a
 * receiver that fails is logged and counted, never retried forever.
 */
export function createWebhookNotifier(opts: WebhookNotifierOptions) {
  const doFetch = opts.fetch ?? ((input, init) => fetch(input, init));
  const target = outbound(opts.url);
  const inFlight = new Set<Promise<void>>();

  function send(event: WebhookEvent, dep: DeploymentRecord): Promise<void> {
    const body = JSON.stringify({
      event,
      at: new Date(opts.now()).toISOString(),
      deployment: {
        id: dep.id,
        service: dep.service,
        image: dep.image,
        digest: dep.digest,
        previousImage: dep.previousImage,
        trigger: dep.trigger,
        status: dep.status,
        message: dep.message,
        requestedBy: dep.requestedBy,
        waitUntil: dep.waitUntil === null ? null : new Date(dep.waitUntil).toISOString(),
      },
    });
    const sending = (async () => {
      const context = { deploymentId: dep.id, event };
      try {
        const res = await doFetch(target.url, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            ...target.headers,
            [SIGNATURE_HEADER]: signBody(opts.secret, body),
            "x-deployer-event": event,
          },
          body,
          redirect: "manual",
          signal: AbortSignal.timeout(opts.timeoutMs ?? 5000),
        });
        await res.body?.cancel();
        const result = res.ok ? "sent" : "failed";
        opts.metrics.notifications.inc({ event, result });
        opts.log[res.ok ? "debug" : "warn"]({ ...context, status: res.status }, `webhook notification ${result}${redirected(res)}`);
      } catch (err) {
        opts.metrics.notifications.inc({ event, result: "failed" });
        opts.log.warn(
          { ...context, err: { name: (err as Error).name, message: (err as Error).message } },
          "webhook notification could not be delivered",
        );
      }
    })();
    inFlight.add(sending);
    void sending.finally(() => inFlight.delete(sending));
    return sending;
  }

  return {
    deploymentFinished: (dep: DeploymentRecord) => send("deployment.finished", dep),
    deploymentWaiting: (dep: DeploymentRecord) => send("deployment.waiting", dep),
    async flush(): Promise<void> {
      while (inFlight.size) await Promise.allSettled([...inFlight]);
    },
  };
}
