import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export type Metrics = ReturnType<typeof createMetrics>;

/** One registry per app instance, so tests can build several apps without clashing names. */
export function createMetrics(opts: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: "deployer_" });
  const deployments = new Counter({
    name: "deployer_deployments_total",
    help: "Deployments that reached a final status, by trigger and outcome.",
    labelNames: ["trigger", "outcome"] as const,
    registers: [registry],
  });
  const webhookRequests = new Counter({
    name: "deployer_webhook_requests_total",
    help: "Webhook requests by endpoint and result (accepted, duplicate, or the error code).",
    labelNames: ["endpoint", "result"] as const,
    registers: [registry],
  });
  const rolloutDuration = new Histogram({
    name: "deployer_rollout_duration_seconds",
    help: "From the service update call to the rollout's final status.",
    labelNames: ["outcome"] as const,
    buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600],
    registers: [registry],
  });
  const pollCycles = new Counter({
    name: "deployer_poll_cycles_total",
    help: "Poll cycles run by the Shepherd-compatible fallback.",
    registers: [registry],
  });
  const pollLookups = new Counter({
    name: "deployer_poll_registry_lookups_total",
    help: "Tag-to-digest lookups (one HEAD each) the poller made, by registry and result.",
    labelNames: ["registry", "result"] as const,
    registers: [registry],
  });
  const missedWebhooks = new Counter({
    name: "deployer_missed_webhooks_total",
    help: "Deployments the poller started because no webhook had brought that digest to the service.",
    labelNames: ["registry"] as const,
    registers: [registry],
  });
  const notifications = new Counter({
    name: "deployer_notifications_total",
    help: "Apprise notifications by event and result (sent, failed).",
    labelNames: ["event", "result"] as const,
    registers: [registry],
  });
  const sourceRejections = new Counter({
    name: "deployer_source_rejections_total",
    help: "Deliveries to a push source that were refused, by source id (or unknown), kind and reason.",
    labelNames: ["source", "kind", "reason"] as const,
    registers: [registry],
  });
  const coalescedEvents = new Counter({
    name: "deployer_coalesced_events_total",
    help: "Push events recorded as coalesced into a deployment that already covered them (a burst's later events), by trigger.",
    labelNames: ["trigger"] as const,
    registers: [registry],
  });
  return {
    registry,
    deployments,
    webhookRequests,
    sourceRejections,
    coalescedEvents,
    rolloutDuration,
    pollCycles,
    pollLookups,
    missedWebhooks,
    notifications,
  };
}
