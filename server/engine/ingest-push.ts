import type { Logger } from "pino";
import type { TriggerKind } from "../domain/deployment.js";
import { familiarRepoTag, repoTagKey } from "../domain/image-ref.js";
import type { IgnoredEvent, PushEvent } from "../domain/push-event.js";
import type { ServiceFilter } from "../domain/service-filter.js";
import { exclusionReason, servicesRunning } from "../domain/service-selection.js";
import type { DeploymentRecord, DeploymentStore } from "../store/deployment-store.js";
import type { CallbackNotifier } from "../notify/callback-notifier.js";
import type { Admitted, Deployer } from "./deployer.js";
import { SwarmUnavailableError, type SwarmPort, type SwarmService } from "./swarm-port.js";

export interface IngestDeps {
  swarm: SwarmPort;
  store: DeploymentStore;
  deployer: Deployer;
  callbacks: CallbackNotifier;
  log: Logger;
  filter?: ServiceFilter;
  ignoreList: string[];
}

export interface IngestRequest {
  kind: TriggerKind;
  requestedBy: string;
  /** The token's `services` claim, when it limits which services it may deploy. */
  allowedServices?: string[];
}

export interface IngestResult {
  deployments: DeploymentRecord[];
  ignored: IgnoredEvent[];
}

/**
 * Turns push events into committed deployments, one per matching service,
 * and hands them to the deployer. Everything is written before the caller
 * answers, so a crash after the 202 loses nothing.
 */
export async function ingestPushes(deps: IngestDeps, request: IngestRequest, events: PushEvent[]): Promise<IngestResult> {
  const result: IngestResult = { deployments: [], ignored: [] };
  let services: SwarmService[] | undefined;
  for (const event of events) {
    const imageKey = repoTagKey(event.image);
    const image = familiarRepoTag(event.image);
    if (deps.store.findTriggerByKey(request.kind, event.eventKey)) {
      result.ignored.push({ reason: "duplicate", eventKey: event.eventKey, image });
      continue;
    }
    let matched: SwarmService[] = [];
    let engineProblem: string | undefined;
    try {
      services ??= await deps.swarm.listServices();
      matched = servicesRunning(services, imageKey);
    } catch (err) {
      if (!(err instanceof SwarmUnavailableError)) throw err;
      engineProblem = err.message;
    }
    const selected: SwarmService[] = [];
    for (const service of matched) {
      const reason = exclusionReason(service, deps, request.allowedServices);
      if (reason) result.ignored.push({ reason, service: service.name, image });
      else selected.push(service);
    }
    const hint = event.digestHint ? ` (payload digest ${event.digestHint})` : "";
    const admitted: Admitted[] = [];
    const recorded = await deps.store.recordTriggerGrouped(
      {
        kind: request.kind,
        eventKey: event.eventKey,
        imageKey,
        digestHint: event.digestHint,
        requestedBy: request.requestedBy,
        callbackUrl: event.callbackUrl,
      },
      selected.map((service) => ({
        service: service.name,
        serviceId: service.id,
        image,
        imageKey,
        digestHint: event.digestHint,
        previousImage: service.image,
        trigger: request.kind,
        requestedBy: request.requestedBy,
        message: `received ${request.kind} push of ${image}${hint}; queued`,
      })),
      // In the same transaction: what these deployments supersede commits with them.
      (rows) => rows.forEach((row) => admitted.push(deps.deployer.admit(row.id))),
    );
    if (recorded.duplicate) {
      result.ignored.push({ reason: "duplicate", eventKey: event.eventKey, image });
      continue;
    }
    if (engineProblem) {
      result.ignored.push({ reason: "engine_unavailable", image, message: `could not list swarm services: ${engineProblem}` });
      deps.log.warn({ image, triggerId: recorded.trigger.id }, "push recorded but the Docker engine is unreachable");
    } else if (selected.length === 0 && matched.length === 0) {
      result.ignored.push({ reason: "no_matching_service", image });
    }
    if (recorded.deployments.length === 0 && !engineProblem) {
      void deps.callbacks.triggerHadNothingToDo(recorded.trigger).catch((err) => deps.log.error({ err }, "callback failed"));
    }
    for (const admission of admitted) result.deployments.push(admission.after());
  }
  return result;
}
