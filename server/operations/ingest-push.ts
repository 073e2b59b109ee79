import type { Logger } from "pino";
import type { TriggerKind } from "../domain/deployment.js";
import { AppError } from "../domain/app-error.js";
import { familiarRepoTag, repoKey, repoTagKey } from "../domain/image-ref.js";
import { readPolicy } from "../domain/policy.js";
import type { IgnoredEvent, PushEvent } from "../domain/push-event.js";
import type { ServiceFilter } from "../domain/service-filter.js";
import { automaticExclusion, followMove, servicesForPush } from "../domain/service-selection.js";
import type { DeploymentRecord, DeploymentStore, NewDeployment } from "../store/deployment-store.js";
import type { CallbackNotifier } from "../notify/callback-notifier.js";
import type { Metrics } from "../metrics.js";
import { requestDeploymentsGrouped } from "./request-deployment.js";
import type { Deployer } from "../engine/deployer.js";
import { withDeadline } from "../engine/deadline.js";
import { SwarmUnavailableError, type SwarmPort, type SwarmService } from "../engine/swarm-port.js";
import type { ServiceIndex } from "../engine/service-index.js";

export interface IngestDeps {
  swarm: SwarmPort;
  /** The services kept from the event stream (engine/service-index.ts); the engine is listed when it is absent, not fresh, or behind. */
  index?: Pick<ServiceIndex, "servicesOf" | "behind">;
  store: DeploymentStore;
  deployer: Deployer;
  callbacks: CallbackNotifier;
  metrics: Pick<Metrics, "coalescedEvents">;
  log: Logger;
  filter?: ServiceFilter;
  ignoreList: string[];
}

export interface IngestRequest {
  kind: TriggerKind;
  requestedBy: string;
  /** The token's `services` claim, when it limits which services it may deploy. */
  allowedServices?: string[];
  /**
   * Who sent it, where the event's own key is the sender's to choose (a registry's event id, Docker Hub's
   * pushed_at): a redelivery is the same event from the same caller, so another token cannot claim its key first.
   */
  keyScope?: string;
}

export interface IngestResult {
  deployments: DeploymentRecord[];
  ignored: IgnoredEvent[];
}

/** How long a webhook waits for the service list before it records the push to be matched later: the contract answers within 100 ms. */
const LIST_DEADLINE_MS = 80;

/**
 * The service list webhooks are waiting on, per engine: concurrent webhooks
 * share one call. Once a webhook gave up on it (a hung engine holds it until
 * the adapter's own deadline), later webhooks do not wait on it again: they
 * record their pushes at once, to be matched when the engine answers.
 */
const inFlight = new WeakMap<SwarmPort, { call: Promise<SwarmService[]>; overdue: boolean }>();

async function listForWebhook(swarm: SwarmPort): Promise<SwarmService[]> {
  let list = inFlight.get(swarm);
  if (list?.overdue) throw new SwarmUnavailableError("the Docker engine has not answered an earlier request yet");
  if (!list) {
    const call = swarm.listServices();
    const entry = { call, overdue: false };
    list = entry;
    inFlight.set(swarm, entry);
    const clear = () => inFlight.get(swarm) === entry && inFlight.delete(swarm);
    call.then(clear, clear);
  }
  try {
    return await withDeadline(list.call, LIST_DEADLINE_MS, "the Docker engine");
  } catch (err) {
    if (inFlight.get(swarm) === list) list.overdue = true;
    throw err;
  }
}

/** The queued deployments of one push, one per selected service: for a webhook now, or for a push matched later. */
export function deploymentsFor(
  selected: SwarmService[],
  push: { kind: TriggerKind; requestedBy: string; imageKey: string; image: string; digestHint?: string | null },
  message: string,
): NewDeployment[] {
  return selected.map((service) => {
    const move = followMove(service, push.imageKey);
    return {
      service: service.name,
      serviceId: service.id,
      image: push.image,
      imageKey: push.imageKey,
      digestHint: push.digestHint ?? undefined,
      previousImage: service.image,
      trigger: push.kind,
      requestedBy: push.requestedBy,
      message: move ? `${message} (follows ${move.policy}: ${move.from} -> ${move.to})` : message,
    };
  });
}

/**
 * Pushes one delivery may carry. A registry sends one, or a handful when a
 * push tags several names; a 1 MiB body could otherwise hold thousands, each
 * a trigger written and matched while the request waits.
 */
export const MAX_PUSHES_PER_DELIVERY = 100;

/**
 * Turns push events into committed deployments, one per matching service,
 * and hands them to the deployer. Everything is written before the caller
 * answers, so a crash after the 202 loses nothing.
 */
export async function ingestPushes(deps: IngestDeps, request: IngestRequest, events: PushEvent[]): Promise<IngestResult> {
  if (events.length > MAX_PUSHES_PER_DELIVERY) {
    throw new AppError(
      "VALIDATION_FAILED",
      `the delivery carries ${events.length} pushes; at most ${MAX_PUSHES_PER_DELIVERY} are taken from one request (send them in several)`,
    );
  }
  const result: IngestResult = { deployments: [], ignored: [] };
  let services: SwarmService[] | undefined;
  let engineProblem: string | undefined;
  for (const event of events) {
    const imageKey = repoTagKey(event.image);
    const image = familiarRepoTag(event.image);
    let matched: SwarmService[] = [];
    // From the index when it is fresh and caught up. While it is behind (an event named a service it has not read
    // yet), from the engine's list: a service the push is for may be that one.
    const indexed = deps.index?.behind() ? undefined : deps.index?.servicesOf(repoKey(event.image));
    // The transaction below tells a redelivery by the trigger's unique key. Before asking the engine for its services, though,
    // a redelivery is answered from the record: it must not wait on the engine, nor mark the engine overdue for the pushes after it.
    const eventKey = request.keyScope ? `${request.keyScope}|${event.eventKey}` : event.eventKey;
    if (!indexed && deps.store.findTriggerByKey(request.kind, eventKey)) {
      result.ignored.push({ reason: "duplicate", eventKey: event.eventKey, image });
      continue;
    }
    if (indexed) matched = servicesForPush(indexed, imageKey);
    // One try per request: a webhook is answered in time whatever the engine does, and its pushes wait to be matched.
    else if (!engineProblem) {
      try {
        services ??= await listForWebhook(deps.swarm);
        matched = servicesForPush(services, imageKey);
      } catch (err) {
        if (!(err instanceof SwarmUnavailableError)) throw err;
        engineProblem = err.message;
      }
    }
    const selected: SwarmService[] = [];
    // Kept apart until the push is recorded: an event recorded before (a redelivery) is answered as a duplicate alone.
    const excluded: IgnoredEvent[] = [];
    const unreadable: Array<{ service: string; errors: string[] }> = [];
    let outsideToken = 0;
    for (const service of matched) {
      // Nothing of a service the token may not deploy is told, but that there is one: not its name, labels or policy.
      if (request.allowedServices && !request.allowedServices.includes(service.name)) {
        outsideToken++;
        continue;
      }
      const reason = automaticExclusion(service, deps);
      if (reason === "invalid_policy") {
        const read = readPolicy(service.labels);
        const errors = read.ok ? [] : read.errors;
        unreadable.push({ service: service.name, errors });
        excluded.push({ reason, service: service.name, image, message: errors.join("; ") });
      } else if (reason) excluded.push({ reason, service: service.name, image });
      else selected.push(service);
    }
    const hint = event.digestHint ? ` (payload digest ${event.digestHint})` : "";
    const recorded = await requestDeploymentsGrouped(
      deps,
      {
        kind: request.kind,
        eventKey,
        imageKey,
        digestHint: event.digestHint,
        requestedBy: request.requestedBy,
        callbackUrl: event.callbackUrl,
        ...(engineProblem ? { unmatched: true, allowedServices: request.allowedServices && JSON.stringify(request.allowedServices) } : {}),
      },
      deploymentsFor(
        selected,
        { kind: request.kind, requestedBy: request.requestedBy, imageKey, image, digestHint: event.digestHint },
        `received ${request.kind} push of ${image}${hint}; queued`,
      ),
      { coalesce: true },
    );
    if (recorded.duplicate) {
      result.ignored.push({ reason: "duplicate", eventKey: event.eventKey, image });
      continue;
    }
    for (const { service, errors } of unreadable) {
      deps.log.warn({ service, image, errors }, "a push matched a service whose policy labels cannot be read; left alone");
    }
    result.ignored.push(...excluded);
    if (outsideToken) result.ignored.push({ reason: "not_in_token", image, services: outsideToken });
    if (recorded.coalesced.length) deps.metrics.coalescedEvents.inc({ trigger: request.kind }, recorded.coalesced.length);
    for (const c of recorded.coalesced) {
      result.ignored.push({ reason: "coalesced", service: c.service, image, deployment: c.deploymentId });
    }
    if (engineProblem) {
      result.ignored.push({
        reason: "engine_unavailable",
        image,
        message: `could not list swarm services: ${engineProblem}; the push is recorded and deployed once the engine answers`,
      });
      deps.log.warn(
        { image, triggerId: recorded.trigger.id },
        "push recorded but the Docker engine did not answer; it is matched to its services once it does",
      );
    } else if (selected.length === 0 && matched.length === 0) {
      result.ignored.push({ reason: "no_matching_service", image });
    }
    if (recorded.deployments.length === 0 && !engineProblem) {
      void deps.callbacks.triggerHadNothingToDo(recorded.trigger).catch((err) => deps.log.error({ err }, "callback failed"));
    }
    result.deployments.push(...recorded.deployments);
  }
  return result;
}
