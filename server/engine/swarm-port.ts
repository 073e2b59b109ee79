/**
 * The swarm as the engine sees it. `dockerode-swarm.ts` implements it over the
 * Docker Engine API; tests use a recording fake. Both run the same contract
 * suite (test/engine/swarm-contract.ts) so they cannot drift apart.
 */
import type { UpdatePolicy } from "../domain/update-policy.js";

export type { UpdatePolicy };

export type UpdateState = "updating" | "paused" | "completed" | "rollback_started" | "rollback_paused" | "rollback_completed";

export interface UpdateStatus {
  state: UpdateState;
  message?: string;
  startedAt?: string;
  completedAt?: string;
}

export interface SwarmService {
  id: string;
  name: string;
  /** `Version.Index`, to be sent back with an update. */
  version: number;
  /** `Spec.TaskTemplate.ContainerSpec.Image` as stored. */
  image: string;
  /** `Spec.Labels`. */
  labels: Record<string, string>;
  mode: "replicated" | "global";
  /** A job (`replicated-job`, `global-job`): its tasks run to completion, so an update of it is no rollout to follow. */
  job: boolean;
  /** Desired replicas for replicated services; undefined for global ones. */
  replicas?: number;
  /** Tasks running now (`ServiceStatus.RunningTasks`, which the engine adds to a service list); undefined where it was not asked. */
  runningTasks?: number;
  /** `Spec.TaskTemplate.ForceUpdate`. */
  forceUpdate: number;
  /** `Spec.UpdateConfig.Monitor` in milliseconds (swarm's default 5 s when unset). */
  monitorMs: number;
  /** `Spec.UpdateConfig.FailureAction` (swarm's default `pause` when unset). */
  failureAction: "pause" | "continue" | "rollback";
  /** Image of `PreviousSpec`, when the service has one. */
  previousImage?: string;
  updateStatus?: UpdateStatus;
  /** `Spec.UpdateConfig` and `Spec.RollbackConfig` as stored: only the fields the spec sets. */
  updatePolicy: UpdatePolicy;
  rollbackPolicy: UpdatePolicy;
}

export type TaskState =
  | "new"
  | "allocated"
  | "pending"
  | "assigned"
  | "accepted"
  | "preparing"
  | "ready"
  | "starting"
  | "running"
  | "complete"
  | "shutdown"
  | "failed"
  | "rejected"
  | "remove"
  | "orphaned";

export interface SwarmTask {
  id: string;
  serviceId: string;
  /** Replica slot; undefined for global services. */
  slot?: number;
  nodeId?: string;
  /** `Spec.ContainerSpec.Image` of the task. */
  image: string;
  desiredState: TaskState;
  state: TaskState;
  /** `Status.Err`, the failure text, when the task failed. */
  error?: string;
  message?: string;
  /** `Status.Timestamp`. */
  timestamp: string;
}

export interface ServiceUpdate {
  /** The full new image string, e.g. `127.0.0.1:5000/app:v2@sha256:…`. */
  image: string;
  /** Bump ForceUpdate, to redeploy tasks whose spec did not change. */
  force?: boolean;
  /** base64url X-Registry-Auth value, when registry auth is to be passed to the nodes. */
  registryAuth?: string;
  /** Fields laid over `Spec.UpdateConfig` (UPDATE_OPTIONS); the others keep their value. */
  updateConfig?: UpdatePolicy;
  /** Fields laid over `Spec.RollbackConfig` (ROLLBACK_OPTIONS). */
  rollbackConfig?: UpdatePolicy;
}

/** An image in the local store of the engine we talk to (the manager this server runs on). */
export interface LocalImage {
  /** `sha256:…` image ID. */
  id: string;
  /** `RepoTags` and `RepoDigests`, as the engine lists them. */
  references: string[];
  /** Creation time, Unix seconds. */
  created: number;
}

/** One entry of the engine's event stream for services (`GET /events?filters={"type":["service"]}`). */
export interface ServiceEvent {
  action: "create" | "update" | "remove";
  /** `Actor.ID`. */
  serviceId: string;
  /** `Actor.Attributes.name`, when the engine sent it. */
  name?: string;
  /** When the engine saw it, Unix ms. */
  at: number;
}

/** What the event stream tells its watcher. */
export interface ServiceEventHandlers {
  onEvent(event: ServiceEvent): void;
  /**
   * The stream is (again) connected. Events between a drop and the
   * reconnection may be lost, so a watcher looks at every service again then.
   */
  onConnected?(): void;
  /** The stream dropped or could not be opened; it is tried again after `retryInMs`. */
  onDisconnected?(reason: string, retryInMs: number): void;
}

/** The service was changed since it was inspected ("update out of sequence"). */
export class SwarmConflictError extends Error {
  override readonly name = "SwarmConflictError";
}

/** The service does not exist (any more). */
export class SwarmNotFoundError extends Error {
  override readonly name = "SwarmNotFoundError";
}

/** The engine could not be reached or answered with an error. */
export class SwarmUnavailableError extends Error {
  override readonly name = "SwarmUnavailableError";
  /**
   * The request may have reached the engine, but no answer came (a deadline, a connection reset mid-call): a
   * write may have been applied. False when the engine answered, or the request never left.
   */
  readonly answerLost: boolean;
  /** The HTTP status the engine (or a proxy before it) answered with, when it answered: a 4xx is a refusal, not an outage. */
  readonly status?: number;
  constructor(message: string, options: { answerLost?: boolean; status?: number } = {}) {
    super(message);
    this.answerLost = options.answerLost ?? false;
    if (options.status !== undefined) this.status = options.status;
  }
}

export interface SwarmPort {
  /** Resolves when the engine answers and is a swarm manager. */
  ping(): Promise<void>;
  listServices(): Promise<SwarmService[]>;
  /** By id or name; undefined when there is no such service. */
  findService(idOrName: string): Promise<SwarmService | undefined>;
  /**
   * Sends the service's current spec (as of `version`) with only the image
   * (and ForceUpdate when asked) changed; the UpdateConfig stays the service's
   * own. Throws SwarmConflictError when `version` is stale.
   */
  updateService(id: string, version: number, update: ServiceUpdate): Promise<{ warnings: string[] }>;
  /** Asks swarm to roll the service back to its PreviousSpec (`rollback=previous`). */
  rollbackService(id: string, version: number): Promise<void>;
  /** Tasks of a service, newest first. */
  listTasks(serviceId: string): Promise<SwarmTask[]>;
  /**
   * The services with these ids, in one request (`GET /services?filters={"id":[…]}`); a service
   * that does not exist is left out. `ids` must not be empty. The shared rollout watcher's read.
   */
  findServices(ids: string[]): Promise<SwarmService[]>;
  /** The tasks of these services, in one request, newest first. `serviceIds` must not be empty. */
  listTasksOf(serviceIds: string[]): Promise<SwarmTask[]>;
  /**
   * Local images with a reference in `repository` (a familiar name such as
   * `nginx` or `127.0.0.1:5000/app`, as `docker images --filter reference=` takes it).
   */
  listImages(repository: string): Promise<LocalImage[]>;
  /** IDs of the images that some container of this engine uses, running or stopped. */
  listContainerImageIds(): Promise<Set<string>>;
  /**
   * Removes one reference (tag or digest) without force: the image goes with
   * its last reference. Throws SwarmConflictError when a container still needs it.
   */
  removeImageReference(reference: string): Promise<void>;
  /**
   * Follows the engine's service events until `signal` aborts, reconnecting
   * after a drop with a bounded backoff; resolves once aborted, never rejects.
   */
  watchServiceEvents(handlers: ServiceEventHandlers, signal: AbortSignal): Promise<void>;
}
