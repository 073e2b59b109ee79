import type { Logger } from "pino";
import { familiarRepoTag, tryParseImageRef } from "../domain/image-ref.js";
import type { Deployer } from "../engine/deployer.js";
import type { SwarmPort, SwarmService } from "../engine/swarm-port.js";
import type { Metrics } from "../metrics.js";
import type { DeploymentHistory } from "../store/deployment-history.js";
import type { DeploymentStore } from "../store/deployment-store.js";
import type { ServiceHolds } from "../store/service-holds.js";
import { requestDeployments } from "../operations/request-deployment.js";
import type { ImageGroup } from "./poll-plan.js";

/** What queueing a poll deployment needs; the poller's own options include it. */
export interface PollDeployDeps {
  swarm: SwarmPort;
  holds: ServiceHolds;
  store: DeploymentStore;
  history: DeploymentHistory;
  deployer: Deployer;
  metrics: Metrics;
  log: Logger;
}

/**
 * Records and queues one `poll` deployment of `digest`, after reading the
 * service again: it may have been removed, changed, or deployed by a webhook
 * while the cycle looked its tag up, and is then left to the next cycle. The first timeline entry says why the poller
 * had to act: no webhook brought the digest (`missed_webhook`, counted), a
 * webhook brought it but its deploy failed for another reason, or the service
 * named no digest. Returns the deployment id; or, when a deployment of the digest already waits at a gate, that one's;
 * or undefined when nothing was queued.
 */
export async function queuePollDeployment(
  deps: PollDeployDeps,
  input: { service: SwarmService; group: ImageGroup; digest: string; cycleAt: number; follow?: string },
): Promise<{ queued: string } | { waiting: string } | undefined> {
  const { log } = deps;
  const { group, digest } = input;
  let fresh: SwarmService | undefined;
  try {
    fresh = await deps.swarm.findService(input.service.id);
  } catch (err) {
    log.error({ service: input.service.name, reason: (err as Error).message }, "could not inspect the service; trying again next cycle");
    return undefined;
  }
  if (!fresh) {
    log.info({ service: input.service.name }, "service removed during the cycle; nothing to do");
    return undefined;
  }
  // What the cycle found is only as new as its plan: a service whose image changed meanwhile, or with a
  // deployment started meanwhile, was moved by someone who knew of a later push (the poller would take
  // it back). The next cycle looks again. Nothing is awaited from here to the record, so none starts in between.
  if (fresh.image !== input.service.image) {
    log.info({ service: fresh.name, planned: input.service.image, now: fresh.image }, "service changed during the cycle; looked at again next cycle");
    return undefined;
  }
  const busy = deps.history.findUnfinishedOf(fresh.name);
  if (busy) {
    log.info({ service: fresh.name, deploymentId: busy.id }, "a deployment of the service started during the cycle; looked at again next cycle");
    return undefined;
  }
  const runningRef = tryParseImageRef(fresh.image);
  const running = runningRef?.digest;
  if (running === digest && runningRef?.tag === group.ref.tag) return undefined;
  const quarantined = deps.holds.findQuarantine(fresh.name, digest);
  if (quarantined) {
    log.debug({ service: fresh.name, digest, deploymentId: quarantined.deploymentId }, "digest quarantined on this service; not deployed again");
    return undefined;
  }
  const decided = deps.history.findWaitingOrRejectedOf(fresh.name, digest);
  if (decided) {
    log.debug(
      { service: fresh.name, digest, deploymentId: decided.id, status: decided.status },
      "digest waits at a gate or was rejected; not asked again",
    );
    return decided.status === "rejected" ? undefined : { waiting: decided.id };
  }
  const image = familiarRepoTag(group.ref);
  const webhook = deps.history.findWebhookDeploymentOf(fresh.name, digest);
  // A webhook that came while the engine was unreachable was recorded but matched no service: not missed.
  const undeployedWebhook = webhook ? undefined : deps.history.findWebhookTriggerOf(group.key, digest);
  const missedWebhook = Boolean(running && !webhook && !undeployedWebhook);
  const why = !running
    ? `the service names no digest, so ${digest} is pinned`
    : webhook
      ? `a webhook brought ${digest} in ${webhook.id}, which ended ${webhook.status}; deploying it again`
      : undeployedWebhook
        ? `a webhook brought ${digest} (trigger ${undeployedWebhook.id}) when no service could be matched to it; deploying it now`
        : `no webhook brought ${digest} (missed_webhook); the service runs ${running}`;
  const recorded = requestDeployments(
    deps,
    { kind: "poll", eventKey: `poll:${fresh.id}:${digest}:${input.cycleAt}`, imageKey: group.key, digestHint: digest, requestedBy: "poller" },
    [
      {
        service: fresh.name,
        serviceId: fresh.id,
        image,
        imageKey: group.key,
        digest,
        previousImage: fresh.image,
        trigger: "poll",
        requestedBy: "poller",
        message: `poll found ${image} at ${digest}: ${input.follow ? `the service ${input.follow}; ` : ""}${why}; queued`,
      },
    ],
  );
  if (recorded.duplicate) return undefined;
  if (missedWebhook) deps.metrics.missedWebhooks.inc({ registry: group.ref.registry });
  const dep = recorded.deployments[0]!;
  log.info({ service: fresh.name, image, digest, deploymentId: dep.id, missedWebhook }, `Trying to update service ${fresh.name} with image ${image}`);
  return { queued: dep.id };
}
