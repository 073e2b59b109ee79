/**
 * Drift: a service whose image changes without the server (someone's
 * `docker service update`, a `docker stack deploy`, a rollback by hand or
 * swarm's own of someone else's update) gets a deployment recorded with
 * trigger `external`, saying what changed, and announced like any other
 * (Apprise says "changed outside the deployer"). The server does not fight
 * it: nothing is held or reverted, and a later push deploys as usual.
 *
 * It follows the engine's service events and looks at the service each one
 * names; on every (re)connection of the stream it looks at all of them, so a
 * change made while the server was down, or the stream was, is recorded too,
 * from the spec version and image kept per service (store/service-versions.ts).
 *
 * What is ours is not drift: an image the deployer marked just before sending
 * it (engine/own-changes.ts), the image the service's latest applied
 * deployment pinned (an external record's too, so one change is recorded
 * once), and, while our deployment is under way or after it failed or was
 * rolled back, the image it replaced (swarm's rollback, or ours).
 */
import type { Logger } from "pino";
import type { Clock } from "../domain/clock.js";
import { isTerminal } from "../domain/deployment.js";
import { familiarRepoTag, repoTagKey, sameImage, tryParseImageRef } from "../domain/image-ref.js";
import type { Deployer } from "../engine/deployer.js";
import type { OwnChanges } from "../engine/own-changes.js";
import { createPerServiceQueue } from "../engine/per-service-queue.js";
import type { ServiceEventSource } from "../engine/service-events.js";
import type { ServiceEvent, SwarmPort, SwarmService } from "../engine/swarm-port.js";
import type { DeploymentHistory } from "../store/deployment-history.js";
import type { DeploymentStore } from "../store/deployment-store.js";
import type { ServiceVersion, ServiceVersions } from "../store/service-versions.js";

export interface DriftDeps {
  swarm: SwarmPort;
  /** The event stream shared with the service index (engine/service-events.ts); the swarm's own when absent. */
  events?: ServiceEventSource;
  /** How an event's service is inspected: the rollout watcher's rounds, shared with the service index; the swarm's own when absent. */
  inspect?: (serviceId: string) => Promise<SwarmService | undefined>;
  store: DeploymentStore;
  history: Pick<DeploymentHistory, "latestAppliedOf">;
  versions: ServiceVersions;
  deployer: Pick<Deployer, "recordObserved">;
  ownChanges: OwnChanges;
  log: Logger;
  clock: Clock;
}

/** Why the watcher looks: an event, the first connection after the start, or a reconnection after a drop. */
type Occasion = "event" | "start" | "reconnect";

const WHEN: Record<Occasion, string> = {
  event: "changed outside the server",
  start: "changed while the server was not running",
  reconnect: "changed while the engine's event stream was down",
};

export function createDriftWatch(deps: DriftDeps) {
  const { log } = deps;
  /** One look at a time per service, in order; a look already waiting covers later events too. */
  const queue = createPerServiceQueue((err, serviceId) => log.error({ err, serviceId }, "drift: could not look at a service's change"));
  const enqueue = queue.enqueue;
  let connections = 0;
  let down = false;
  let abort: AbortController | undefined;
  let loop: Promise<void> | undefined;

  /** Whether the image the service runs is one our own deployments account for. */
  function accounted(service: SwarmService): boolean {
    if (deps.ownChanges.isOurs(service.id, service.image)) return true;
    const latest = deps.history.latestAppliedOf(service.name);
    if (!latest) return false;
    if (latest.pinnedImage && sameImage(latest.pinnedImage, service.image)) return true;
    const goingBack = !isTerminal(latest.status) || latest.status === "rolled_back" || latest.status === "failed";
    return latest.trigger !== "external" && goingBack && !!latest.previousImage && sameImage(latest.previousImage, service.image);
  }

  function record(service: SwarmService, last: ServiceVersion, occasion: Occasion): void {
    const ref = tryParseImageRef(service.image);
    const imageKey = ref ? repoTagKey(ref) : service.image;
    const swarmSays = service.updateStatus
      ? `; swarm's update state: ${service.updateStatus.state}${service.updateStatus.message ? ` (${service.updateStatus.message})` : ""}`
      : "";
    const message = `${WHEN[occasion]}: image ${last.image} -> ${service.image}${ref?.digest ? ` (digest ${ref.digest})` : ""}, spec version ${last.version} -> ${service.version}${swarmSays}`;
    const recorded = deps.store.recordTrigger(
      { kind: "external", eventKey: `external:${service.id}:${service.version}`, imageKey, digestHint: ref?.digest, requestedBy: "external" },
      [
        {
          service: service.name,
          serviceId: service.id,
          image: ref ? familiarRepoTag(ref) : service.image,
          imageKey,
          digest: ref?.digest,
          previousImage: last.image,
          trigger: "external",
          requestedBy: "external",
          message,
        },
      ],
    );
    if (recorded.duplicate) return;
    const dep = deps.deployer.recordObserved(
      recorded.deployments[0]!.id,
      service.image,
      "recorded as seen; swarm rolls it out on its own, and the server leaves it",
    );
    log.warn(
      {
        deploymentId: dep.id,
        service: service.name,
        from: last.image,
        to: service.image,
        fromVersion: last.version,
        toVersion: service.version,
        occasion,
      },
      "a service's image was changed outside the server; recorded as an external deployment",
    );
  }

  /** Compares what the service runs with what was last seen, records a change that is not ours, and remembers it. */
  function observe(service: SwarmService, occasion: Occasion): void {
    const last = deps.versions.find(service.id);
    // A list's view older than what a live look saw since: swarm's versions only grow.
    if (last && service.version < last.version) return;
    if (last && last.version !== service.version && !sameImage(last.image, service.image) && !accounted(service)) {
      record(service, last, occasion);
    }
    if (!last || last.version !== service.version || last.image !== service.image) {
      deps.versions.save({ serviceId: service.id, service: service.name, version: service.version, image: service.image, seenAt: deps.clock.now() });
    }
  }

  async function look(serviceId: string): Promise<void> {
    let service: SwarmService | undefined;
    try {
      service = await (deps.inspect ? deps.inspect(serviceId) : deps.swarm.findService(serviceId));
    } catch (err) {
      // The next event, or the next reconnection's full look, tries again.
      log.warn({ serviceId, reason: (err as Error).message }, "drift: could not inspect a service an event named");
      return;
    }
    if (service) observe(service, "event");
    else deps.versions.remove(serviceId);
  }

  async function lookAtAll(occasion: Occasion): Promise<void> {
    let services: SwarmService[];
    try {
      services = await (deps.events ?? deps.swarm).listServices();
    } catch (err) {
      log.warn({ reason: (err as Error).message }, "drift: could not list the services after the event stream connected");
      return;
    }
    const present = new Set(services.map((s) => s.id));
    // Each on the list's view of the service: an event after it still gets a live look of its own.
    for (const service of services) enqueue(service.id, () => observe(service, occasion), { readsLive: false });
    for (const row of deps.versions.all()) if (!present.has(row.serviceId)) deps.versions.remove(row.serviceId);
  }

  const handlers = {
    onEvent(event: ServiceEvent): void {
      if (event.action === "remove") enqueue(event.serviceId, () => deps.versions.remove(event.serviceId));
      else enqueue(event.serviceId, () => look(event.serviceId));
    },
    onConnected(): void {
      const occasion: Occasion = connections++ === 0 ? "start" : "reconnect";
      if (down) log.info("drift: the engine's event stream is back; looking at every service");
      down = false;
      void lookAtAll(occasion);
    },
    onDisconnected(reason: string, retryInMs: number): void {
      log[down ? "debug" : "warn"]({ reason, retryInMs }, "drift: the engine's event stream dropped; reconnecting");
      down = true;
    },
  };

  return {
    /** Follows the event stream until stop(). */
    start(): void {
      if (loop) return;
      abort = new AbortController();
      loop = (deps.events ?? deps.swarm).watchServiceEvents(handlers, abort.signal);
    },
    async stop(): Promise<void> {
      abort?.abort();
      await loop;
      loop = undefined;
      await this.settled();
    },
    /** Resolves once every look asked for so far is done (tests). */
    async settled(): Promise<void> {
      await queue.settled();
    },
  };
}

export type DriftWatch = ReturnType<typeof createDriftWatch>;
