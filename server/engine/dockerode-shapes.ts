/** The Engine API's service and task documents, as far as the adapter reads them, and their plain SwarmPort shapes. */
import { toPolicy, type EngineUpdateConfig } from "./dockerode-policy.js";
import type { SwarmService, SwarmTask, TaskState, UpdateStatus } from "./swarm-port.js";

/** What `GET /services/{id}` returns, as far as this adapter reads it. */
export interface ServiceSpec {
  Name?: string;
  Labels?: Record<string, string>;
  TaskTemplate?: { ContainerSpec?: { Image?: string }; ForceUpdate?: number };
  Mode?: { Replicated?: { Replicas?: number }; Global?: object; ReplicatedJob?: object; GlobalJob?: object };
  UpdateConfig?: EngineUpdateConfig;
  RollbackConfig?: EngineUpdateConfig;
  [key: string]: unknown;
}
export interface ServiceInspect {
  ID: string;
  Version: { Index: number };
  Spec: ServiceSpec;
  PreviousSpec?: ServiceSpec;
  UpdateStatus?: { State?: string; Message?: string; StartedAt?: string; CompletedAt?: string };
  /** Only in `GET /services?status=true` answers (API 1.41). */
  ServiceStatus?: { RunningTasks?: number; DesiredTasks?: number };
}
export interface TaskInspect {
  ID: string;
  ServiceID: string;
  Slot?: number;
  NodeID?: string;
  CreatedAt?: string;
  UpdatedAt?: string;
  Spec?: { ContainerSpec?: { Image?: string } };
  DesiredState: string;
  Status?: { State?: string; Err?: string; Message?: string; Timestamp?: string };
}

/** What swarmkit watches a new task for when the spec sets no Monitor. */
const SWARM_DEFAULT_MONITOR_MS = 5000;

export function toService(s: ServiceInspect): SwarmService {
  const spec = s.Spec;
  const update = spec.UpdateConfig;
  const global = spec.Mode?.Global !== undefined || spec.Mode?.GlobalJob !== undefined;
  const failureAction = update?.FailureAction;
  return {
    id: s.ID,
    name: spec.Name ?? "",
    version: s.Version.Index,
    image: spec.TaskTemplate?.ContainerSpec?.Image ?? "",
    // A copy: the adapter keeps the spec it read to send back with the update (dockerode-swarm.ts).
    labels: { ...spec.Labels },
    mode: global ? "global" : "replicated",
    job: spec.Mode?.ReplicatedJob !== undefined || spec.Mode?.GlobalJob !== undefined,
    replicas: global ? undefined : (spec.Mode?.Replicated?.Replicas ?? 1),
    runningTasks: s.ServiceStatus?.RunningTasks,
    forceUpdate: spec.TaskTemplate?.ForceUpdate ?? 0,
    // Durations are integer nanoseconds. The daemon stores a 0 Monitor as unset
    // (convert/service.go), and swarmkit then watches for its default 5 s.
    monitorMs: update?.Monitor ? Math.round(update.Monitor / 1e6) : SWARM_DEFAULT_MONITOR_MS,
    failureAction: failureAction === "continue" || failureAction === "rollback" ? failureAction : "pause",
    previousImage: s.PreviousSpec?.TaskTemplate?.ContainerSpec?.Image,
    updateStatus: s.UpdateStatus?.State ? toUpdateStatus(s.UpdateStatus) : undefined,
    updatePolicy: toPolicy(spec.UpdateConfig),
    rollbackPolicy: toPolicy(spec.RollbackConfig),
  };
}

function toUpdateStatus(u: NonNullable<ServiceInspect["UpdateStatus"]>): UpdateStatus {
  return {
    state: u.State as UpdateStatus["state"],
    message: u.Message || undefined,
    startedAt: u.StartedAt,
    // Go zero times ("0001-01-01T00:00:00Z") mean "not yet".
    completedAt: u.CompletedAt && !u.CompletedAt.startsWith("0001-") ? u.CompletedAt : undefined,
  };
}

export function toTask(t: TaskInspect): SwarmTask {
  return {
    id: t.ID,
    serviceId: t.ServiceID,
    slot: t.Slot || undefined,
    nodeId: t.NodeID || undefined,
    image: t.Spec?.ContainerSpec?.Image ?? "",
    desiredState: t.DesiredState as TaskState,
    state: (t.Status?.State ?? "new") as TaskState,
    error: t.Status?.Err || undefined,
    message: t.Status?.Message || undefined,
    timestamp: t.Status?.Timestamp ?? t.UpdatedAt ?? t.CreatedAt ?? "",
  };
}

/**
 * Go prints RFC 3339 with trailing zeros of the fraction cut ("…:06.5965Z"),
 * so plain string order is wrong; padding the fraction to nanoseconds fixes it
 * without losing the precision Date.parse would drop. The engine answers in UTC.
 */
export function timeKey(timestamp: string): string {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(timestamp);
  return m ? `${m[1]}.${(m[2] ?? "").padEnd(9, "0")}` : timestamp;
}
