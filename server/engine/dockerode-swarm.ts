/**
 * SwarmPort over the Docker Engine API. With `dockerode-images.ts` and
 * `docker-client.ts`, the only code in server/ that talks dockerode:
 * everything else sees the plain shapes of `swarm-port.ts`. Every service name
 * or id reaches a path through `serviceSegment`, which refuses what cannot
 * name a service and escapes the rest.
 */
import type Docker from "dockerode";
import { serviceSegment } from "./docker-client.js";
import { watchDockerServiceEvents, type EventStreamOptions } from "./docker-events.js";
import { createDockerodeImages } from "./dockerode-images.js";
import { overlayPolicy } from "./dockerode-policy.js";
import { timeKey, toService, toTask, type ServiceInspect, type TaskInspect } from "./dockerode-shapes.js";
import { SwarmConflictError, SwarmNotFoundError, SwarmUnavailableError, type SwarmPort } from "./swarm-port.js";

export interface DockerodeSwarmOptions {
  /** A ceiling on every Engine API call's deadline (tests shorten it). */
  requestTimeoutMs?: number;
  /** The event stream's reconnection backoff (tests shorten it). */
  events?: EventStreamOptions;
}

/**
 * Each Engine API call's deadline, fitted to what it does: a hung daemon must
 * hang nothing. A ping answers from memory; reads walk the raft store; an
 * update or a rollback writes to it through the raft quorum.
 */
const DEADLINES_MS = { ping: 2_000, read: 10_000, write: 30_000 } as const;
type Deadline = keyof typeof DEADLINES_MS;

export function createDockerodeSwarm(docker: Docker, options: DockerodeSwarmOptions = {}): SwarmPort {
  /** Runs one Engine API call within its deadline and turns its failure into the port's errors. */
  async function call<T>(request: (abortSignal: AbortSignal) => Promise<T>, deadline: Deadline = "read"): Promise<T> {
    const timeoutMs = Math.min(DEADLINES_MS[deadline], options.requestTimeoutMs ?? Infinity);
    try {
      return await request(AbortSignal.timeout(timeoutMs));
    } catch (err) {
      throw toSwarmError(err, timeoutMs);
    }
  }

  /**
   * The last spec read of each service, by id and version. An update must
   * send the whole spec back, and the deployment read the service just
   * before (to check it and take its version): at the same version the spec
   * is the same, so the update sends that one instead of inspecting again.
   * A version that moved meanwhile is refused by the engine ("update out of
   * sequence"), as a stale inspect would be, and the caller reads again.
   */
  const specs = new Map<string, ServiceInspect>();
  const SPECS_KEPT = 256;
  function remember(service: ServiceInspect): ServiceInspect {
    specs.delete(service.ID);
    if (specs.size >= SPECS_KEPT) specs.delete(specs.keys().next().value!);
    specs.set(service.ID, service);
    return service;
  }
  /** The service at `version`: the spec read last when it is that version, else a fresh inspect. */
  async function atVersion(id: string, version: number): Promise<ServiceInspect> {
    const known = specs.get(id);
    return known && known.Version.Index === version ? known : inspect(id);
  }

  async function inspect(idOrName: string): Promise<ServiceInspect> {
    const segment = serviceSegment(idOrName);
    return remember((await call((abortSignal) => docker.getService(segment).inspect({ abortSignal }))) as ServiceInspect);
  }

  async function tasksOf(serviceIds: string[]) {
    const wanted = new Set(serviceIds);
    const tasks = (await call((abortSignal) => docker.listTasks({ filters: { service: serviceIds }, abortSignal }))) as TaskInspect[];
    return tasks
      .filter((t) => serviceIds.length === 1 || wanted.has(t.ServiceID ?? ""))
      .map((t) => ({ task: toTask(t), key: timeKey(t.Status?.Timestamp ?? t.UpdatedAt ?? t.CreatedAt ?? "") }))
      .sort((a, b) => (a.key < b.key ? 1 : a.key > b.key ? -1 : 0))
      .map(({ task }) => task);
  }

  return {
    async ping() {
      // @types/dockerode omits info()'s options, which do carry abortSignal.
      const info = (await call((abortSignal) => (docker.info as (o: object) => Promise<unknown>).call(docker, { abortSignal }), "ping")) as {
        Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean };
      };
      const state = info.Swarm?.LocalNodeState ?? "unknown";
      if (state !== "active" || info.Swarm?.ControlAvailable !== true) {
        throw new SwarmUnavailableError(
          `this Docker engine is not a swarm manager (swarm state "${state}", manager: ${info.Swarm?.ControlAvailable === true})`,
        );
      }
    },

    async listServices() {
      const services = (await call((abortSignal) => docker.listServices({ status: true, abortSignal } as object))) as unknown as ServiceInspect[];
      return services.map(toService);
    },

    async findService(idOrName) {
      try {
        const service = await inspect(idOrName);
        // The engine also resolves unique ID prefixes; "web" must not find a
        // service whose ID happens to start with "web".
        return service.ID === idOrName || service.Spec.Name === idOrName ? toService(service) : undefined;
      } catch (err) {
        if (err instanceof SwarmNotFoundError) return undefined;
        // A name that is no service's, but the start of several IDs: "service a is ambiguous (2 matches found)", a 400.
        if (err instanceof SwarmUnavailableError && err.status === 400) return undefined;
        throw err;
      }
    },

    async updateService(id, version, update) {
      const current = await atVersion(id, version);
      if (current.Version.Index !== version) {
        throw new SwarmConflictError(`service ${id} is at version ${current.Version.Index}, not ${version}`);
      }
      // The manager replaces the spec wholesale, so send back everything it
      // gave us, with only the image (and ForceUpdate) changed.
      const spec = structuredClone(current.Spec);
      const template = (spec.TaskTemplate ??= {});
      template.ContainerSpec = { ...template.ContainerSpec, Image: update.image };
      if (update.force) template.ForceUpdate = (template.ForceUpdate ?? 0) + 1;
      if (update.updateConfig) spec.UpdateConfig = overlayPolicy(spec.UpdateConfig, update.updateConfig);
      if (update.rollbackConfig) spec.RollbackConfig = overlayPolicy(spec.RollbackConfig, update.rollbackConfig);
      const opts: Record<string, unknown> = {
        // docker-modem sends `_query` as the query string and `_body` as the
        // JSON body; without the split every spec key would land in the URL.
        _query: { version, registryAuthFrom: "spec" },
        _body: spec,
      };
      // docker-modem takes `authconfig.base64` verbatim as X-Registry-Auth (it
      // is already base64url) and strips `authconfig` from query and body.
      if (update.registryAuth) opts.authconfig = { base64: update.registryAuth };
      const result = (await call((abortSignal) => docker.getService(serviceSegment(current.ID)).update({ ...opts, abortSignal }), "write")) as {
        Warnings?: string[] | null;
      } | null;
      return { warnings: result?.Warnings ?? [] };
    },

    async rollbackService(id, version) {
      const current = await atVersion(id, version);
      if (current.Version.Index !== version) {
        throw new SwarmConflictError(`service ${id} is at version ${current.Version.Index}, not ${version}`);
      }
      // The daemon ignores the body for rollback=previous but still decodes it.
      await call(
        (abortSignal) =>
          docker.getService(serviceSegment(current.ID)).update({ _query: { version, rollback: "previous" }, _body: current.Spec, abortSignal }),
        "write",
      );
    },

    listTasks: (serviceId) => tasksOf([serviceId]),

    async findServices(ids) {
      if (ids.length === 0) throw new Error("findServices needs at least one id: the engine lists every service for none");
      const wanted = new Set(ids);
      const services = (await call((abortSignal) => docker.listServices({ filters: { id: ids }, abortSignal }))) as unknown as ServiceInspect[];
      // The engine's id filter matches prefixes: keep exact ids only.
      return services.filter((s) => wanted.has(s.ID)).map((s) => toService(remember(s)));
    },

    async listTasksOf(serviceIds) {
      if (serviceIds.length === 0) throw new Error("listTasksOf needs at least one service id: the engine lists every task for none");
      return tasksOf(serviceIds);
    },

    watchServiceEvents: (handlers, signal) => watchDockerServiceEvents(docker, handlers, signal, options.events),

    ...createDockerodeImages(docker, call),
  };
}

/** Connection errors that can come after the request was sent: the engine may have acted on it. */
const ANSWER_LOST = new Set(["ECONNRESET", "EPIPE", "ETIMEDOUT"]);

const CONNECTION_ERRORS = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOENT",
  "EACCES",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

function toSwarmError(err: unknown, timeoutMs: number): unknown {
  const e = err as { statusCode?: number; code?: string; name?: string; message?: string; json?: { message?: string } };
  if (e.name === "TimeoutError" || e.name === "AbortError") {
    return new SwarmUnavailableError(`the Docker engine did not answer within ${timeoutMs} ms`, { answerLost: true });
  }
  const message = e.json?.message ?? e.message ?? String(err);
  if (e.statusCode === 404) return new SwarmNotFoundError(message);
  // swarmkit's ErrSequenceConflict reaches us as a 500, not a 409.
  if (e.statusCode === 500 && message.includes("update out of sequence")) return new SwarmConflictError(message);
  // A proxy in front of the engine (a socket proxy, an SSH tunnel's gateway) answers 502 or 504 for a request it may have passed on.
  if (typeof e.statusCode === "number") {
    return new SwarmUnavailableError(`Docker engine answered ${e.statusCode}: ${message}`, {
      answerLost: e.statusCode === 502 || e.statusCode === 504,
      status: e.statusCode,
    });
  }
  if (e.code && CONNECTION_ERRORS.has(e.code)) {
    return new SwarmUnavailableError(`cannot reach the Docker engine: ${message}`, { answerLost: ANSWER_LOST.has(e.code) });
  }
  // An answer cut off after the request was sent: the engine may have acted on it.
  if (e.code === "ERR_STREAM_PREMATURE_CLOSE")
    return new SwarmUnavailableError(`the Engine API answer was cut off: ${message}`, { answerLost: true });
  // Node's own refusals to send a request (ERR_UNESCAPED_CHARACTERS, ERR_INVALID_URL,
  // ERR_INVALID_CHAR, …): the request never left, and the caller records why.
  if (e.code?.startsWith("ERR_")) return new SwarmUnavailableError(`the Engine API request could not be sent: ${message}`);
  return err;
}
