import type { Logger } from "pino";
import type { DeploymentRecord, DeploymentStore, TriggerRecord } from "../store/deployment-store.js";

export type CallbackState = "success" | "failure" | "error";

export interface CallbackNotifierOptions {
  store: DeploymentStore;
  log: Logger;
  /** `host` or `host:port` entries (DEPLOYER_CALLBACK_HOSTS). */
  allowedHosts: string[];
  /** DEPLOYER_PUBLIC_URL: `target_url` links to the deployment's page there; without it there is no link. */
  publicUrl?: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

/**
 * Whether a callback URL may be called: http(s) and a host (or host:port) on the allowlist. A host named
 * without a port is that host on its scheme's own port (443, 80), not whatever else listens there.
 */
export function isCallbackAllowed(url: string, allowedHosts: string[]): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") return false;
  if (parsed.username || parsed.password) return false;
  // `host` drops the scheme's own port (https://x:443 is x), and keeps any other.
  const host = parsed.host.toLowerCase();
  return allowedHosts.some((entry) => entry.toLowerCase() === host);
}

/** The verdict for Docker Hub: any rollout failure is `failure`, a broken engine or registry is `error`. */
export function callbackStateFor(deployments: DeploymentRecord[]): { state: CallbackState; description: string } {
  if (deployments.length === 0) return { state: "success", description: "no service runs this image; nothing to deploy" };
  const bad = deployments.filter((d) => d.status !== "succeeded" && d.status !== "skipped");
  if (bad.length === 0) {
    return { state: "success", description: deployments.map((d) => `${d.service}: ${d.status}`).join("; ") };
  }
  const state: CallbackState = bad.some((d) => d.failureKind === "error") ? "error" : "failure";
  return { state, description: bad.map((d) => `${d.service}: ${d.status}${d.message ? ` (${d.message})` : ""}`).join("; ") };
}

/**
 * Calls Docker Hub's legacy `callback_url` once per trigger, after the last of
 * its deployments ended. Best effort: Docker Hub no longer honours the field,
 * so a failed call is recorded, never retried forever, never fatal.
 */
export function createCallbackNotifier(opts: CallbackNotifierOptions) {
  const doFetch = opts.fetch ?? fetch;
  const inFlight = new Set<string>();

  async function send(trigger: TriggerRecord, deployments: DeploymentRecord[]): Promise<void> {
    if (!trigger.callbackUrl || trigger.callbackState || inFlight.has(trigger.id)) return;
    const { state, description } = callbackStateFor(deployments);
    const record = (text: string) => {
      for (const d of deployments) opts.store.addEvent(d.id, text);
    };
    if (!isCallbackAllowed(trigger.callbackUrl, opts.allowedHosts)) {
      opts.store.setCallbackState(trigger.id, "not_allowed");
      record(`callback not sent: its host is not in DEPLOYER_CALLBACK_HOSTS`);
      opts.log.warn({ triggerId: trigger.id }, "callback host not allowed; not called");
      return;
    }
    inFlight.add(trigger.id);
    const body = {
      state,
      description: description.slice(0, 255),
      context: "deployer",
      target_url: opts.publicUrl && deployments[0] ? `${opts.publicUrl}/deployments/${deployments[0].id}` : undefined,
    };
    try {
      const res = await doFetch(trigger.callbackUrl, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(opts.timeoutMs ?? 5000),
        redirect: "manual",
      });
      opts.store.setCallbackState(trigger.id, `${state}:${res.status}`);
      record(`callback ${state} sent, answered ${res.status}`);
      opts.log.info({ triggerId: trigger.id, state, status: res.status }, "callback sent");
    } catch (err) {
      opts.store.setCallbackState(trigger.id, `${state}:unreachable`);
      record(`callback ${state} could not be delivered: ${(err as Error).name}`);
      opts.log.warn({ triggerId: trigger.id, err: (err as Error).message }, "callback failed");
    } finally {
      inFlight.delete(trigger.id);
    }
  }

  return {
    /**
     * Call when a deployment reached a final status; each trigger it served
     * (its own, and those coalesced into it) is answered once all of that
     * trigger's deployments are final.
     */
    async deploymentFinished(deployment: DeploymentRecord): Promise<void> {
      const served = opts.store.callbacksCoalescedInto(deployment.id);
      const own = deployment.triggerId ? opts.store.getTrigger(deployment.triggerId) : undefined;
      if (own) served.unshift(own);
      for (const trigger of served) await settle(trigger);
    },
    /** A trigger that got no deployment of its own (no service, or coalesced into others) still answers its callback. */
    async triggerHadNothingToDo(trigger: TriggerRecord): Promise<void> {
      await settle(trigger);
    },
  };

  async function settle(trigger: TriggerRecord): Promise<void> {
    if (!trigger.callbackUrl || trigger.callbackState) return;
    const served = opts.store.findByTrigger(trigger.id);
    if (served.some((d) => d.status === "queued" || d.status === "running")) return;
    await send(trigger, served);
  }
}

export type CallbackNotifier = ReturnType<typeof createCallbackNotifier>;
