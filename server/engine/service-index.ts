/**
 * The swarm's services, kept from the engine's service events, so that a
 * webhook finds the services running its image without an Engine API call:
 * at 1,000 services a `GET /services` is ~100 ms and ~650 KB, on every push.
 *
 * Kept by: a full list on each (re)connection of the event stream and every
 * DEPLOYER_SERVICE_RESYNC; an inspect of the service each `create`/`update`
 * event names (one at a time per service, in order), a removal on `remove`.
 * A change seen by an event after a full list started wins over that list.
 *
 * `services()` answers only while the index is fresh: synced since the
 * stream last connected, the stream up, and no inspect failed since. Else it
 * answers undefined and the caller lists the engine itself, as before.
 *
 * What it cannot know: an event the engine has not delivered yet. A webhook
 * that comes within the few milliseconds between a `docker service
 * create/update/rm` and its event sees the swarm as it was. While an event
 * names a service the index has not read yet, or a full list runs
 * (`behind()`), operations/ingest-push.ts matches pushes against the engine's
 * list instead; an update moving a known service to another repository is
 * seen once its inspect returns. run-deployment.ts reads the service live
 * before it updates it and leaves it alone when it no longer runs the pushed
 * repository. So a stale index costs at most a missed push (the poller's, or
 * the next push's, to deliver), never an update of the wrong service; and a
 * push for a tag no service runs costs no Engine API call once the index has
 * caught up, rollouts under way or not.
 */
import type { Logger } from "pino";
import type { Clock } from "../domain/clock.js";
import { repoKey, tryParseImageRef } from "../domain/image-ref.js";
import { createPerServiceQueue } from "./per-service-queue.js";
import type { ServiceEventSource } from "./service-events.js";
import type { ServiceEvent, SwarmPort, SwarmService } from "./swarm-port.js";

/** How soon a full list that failed is tried again. */
const RETRY_MS = 2_000;

export function createServiceIndex(deps: {
  swarm: Pick<SwarmPort, "findService">;
  /** The shared event stream, and the full lists (shared with the drift watcher's when asked in the same turn). */
  events: ServiceEventSource;
  clock: Clock;
  log: Logger;
  /** DEPLOYER_SERVICE_RESYNC; 0: only on (re)connection. */
  resyncMs: number;
  /** How an event's service is inspected: the rollout watcher's rounds (engine/rollout-watcher.ts), shared with the drift watcher; the swarm's own when absent. */
  inspect?: (serviceId: string) => Promise<SwarmService | undefined>;
}) {
  const { log } = deps;
  const inspect = deps.inspect ?? ((id: string) => deps.swarm.findService(id));
  const byId = new Map<string, SwarmService>();
  /** Service ids by the `registry/repo` they run: a push looks at its repository's services, not at all of them. */
  const byRepo = new Map<string, Set<string>>();
  const repoOf = (s: SwarmService) => {
    const ref = tryParseImageRef(s.image);
    return ref ? repoKey(ref) : "";
  };
  const put = (s: SwarmService) => {
    drop(s.id);
    byId.set(s.id, s);
    const key = repoOf(s);
    byRepo.set(key, (byRepo.get(key) ?? new Set()).add(s.id));
  };
  function drop(id: string): void {
    const old = byId.get(id);
    if (!old) return;
    byId.delete(id);
    const key = repoOf(old);
    const ids = byRepo.get(key);
    ids?.delete(id);
    if (ids?.size === 0) byRepo.delete(key);
  }
  /** A counter of changes: each event's change, and each full list's start, takes the next value. */
  let seq = 0;
  const changedAt = new Map<string, number>();
  const queue = createPerServiceQueue();
  const enqueue = queue.enqueue;
  let connected = false;
  let connection = 0;
  let fresh = false;
  /** The full list under way, and the one asked for while it runs. */
  let resyncing: Promise<boolean> | undefined;
  let queued: Promise<boolean> | undefined;
  /** Inspects that failed: a list that saw one fail while it ran leaves the index not fresh. */
  let failures = 0;
  let resyncs = 0;
  let abort: AbortController | undefined;
  let loops: Promise<unknown> | undefined;

  async function refresh(serviceId: string): Promise<void> {
    try {
      const service = await inspect(serviceId);
      if (service) put(service);
      else drop(serviceId);
      changedAt.set(serviceId, ++seq);
    } catch (err) {
      // Not known any more: answer from the engine until a full list started after this has run.
      log.warn({ serviceId, reason: (err as Error).message }, "service index: could not inspect a service an event named; listing all again");
      fresh = false;
      failures++;
      void resync();
    }
  }

  function onEvent(event: ServiceEvent): void {
    if (event.action === "remove") {
      enqueue(event.serviceId, () => {
        drop(event.serviceId);
        changedAt.set(event.serviceId, ++seq);
      });
    } else enqueue(event.serviceId, () => refresh(event.serviceId));
  }

  /**
   * One full list at a time; true when it ran and the index is fresh after it. Asked while one runs, another runs
   * after it: a list that started before a reconnection or a failed inspect cannot make the index fresh.
   */
  function resync(): Promise<boolean> {
    if (!resyncing) {
      resyncing = list().finally(() => (resyncing = undefined));
      return resyncing;
    }
    queued ??= resyncing.then(() => {
      queued = undefined;
      return resync();
    });
    return queued;
  }

  async function list(): Promise<boolean> {
    const startedAt = ++seq;
    const during = connection;
    const failuresBefore = failures;
    try {
      const services = await deps.events.listServices();
      const listed = new Set<string>();
      for (const s of services) {
        listed.add(s.id);
        if ((changedAt.get(s.id) ?? 0) < startedAt) put(s);
      }
      for (const id of [...byId.keys()]) if (!listed.has(id) && (changedAt.get(id) ?? 0) < startedAt) drop(id);
      for (const [id, at] of changedAt) if (at < startedAt) changedAt.delete(id);
      resyncs++;
      fresh = connected && during === connection && failures === failuresBefore;
      return fresh;
    } catch (err) {
      log.warn(
        { reason: (err as Error).message, retryInMs: RETRY_MS },
        "service index: could not list the services; webhooks ask the engine meanwhile",
      );
      fresh = false;
      if (abort && !abort.signal.aborted) void deps.clock.sleep(RETRY_MS, abort.signal).then(() => !abort?.signal.aborted && resync());
      return false;
    }
  }

  const handlers = {
    onEvent,
    onConnected(): void {
      connected = true;
      connection++;
      void resync();
    },
    onDisconnected(reason: string): void {
      if (connected) log.warn({ reason }, "service index: the event stream dropped; webhooks ask the engine until it is back and listed again");
      connected = false;
      fresh = false;
    },
  };

  return {
    /** Every service, when the index is fresh; undefined when the caller must ask the engine. */
    services(): SwarmService[] | undefined {
      return fresh ? [...byId.values()] : undefined;
    },
    /**
     * Whether a service the index does not know may be on its way: an event named one it has not read yet (a
     * service just created), or a full list is under way. Events of services it knows (a rollout's) do not count.
     */
    behind(): boolean {
      if (resyncing || queued) return true;
      for (const id of queue.pending()) if (!byId.has(id)) return true;
      return false;
    },
    /** The services running an image of `registry/repo` (any tag or digest), when the index is fresh. */
    servicesOf(repository: string): SwarmService[] | undefined {
      if (!fresh) return undefined;
      return [...(byRepo.get(repository) ?? [])].map((id) => byId.get(id)!);
    },
    /** Lists every service again now (also what the periodic resync runs). */
    resync,
    /** Follows the event stream, and resyncs every DEPLOYER_SERVICE_RESYNC, until stop(). */
    start(): void {
      if (abort) return;
      const controller = (abort = new AbortController());
      const periodic = async () => {
        while (deps.resyncMs > 0 && !controller.signal.aborted) {
          await deps.clock.sleep(deps.resyncMs, controller.signal);
          if (!controller.signal.aborted) await resync();
        }
      };
      loops = Promise.all([deps.events.watchServiceEvents(handlers, controller.signal), periodic()]);
    },
    async stop(): Promise<void> {
      abort?.abort();
      await loops;
      abort = undefined;
      loops = undefined;
      fresh = false;
      await this.settled();
    },
    /** Resolves once every inspect and list asked for so far is done (tests). */
    async settled(): Promise<void> {
      while (queue.busy() || resyncing || queued) await Promise.allSettled([queue.settled(), resyncing, queued]);
    },
    /** Full lists done since the start (tests, the bench). */
    resyncCount: () => resyncs,
  };
}

export type ServiceIndex = ReturnType<typeof createServiceIndex>;
