import type { SwarmService, SwarmTask } from "./swarm-port.js";
import { SwarmNotFoundError, SwarmUnavailableError } from "./swarm-port.js";
import { formatProgress } from "../domain/rollout-progress.js";
import type { RolloutWatcher } from "./rollout-watcher.js";
import { describeStuckTasks, liveDesired } from "./stuck-tasks.js";

export type RolloutOutcome =
  | { status: "succeeded"; message: string }
  | { status: "rolled_back"; message: string }
  | { status: "failed"; message: string; failureKind: "rollout" | "error"; canRollback: boolean };

export interface FollowOptions {
  /** The one watcher of every rollout under way (rollout-watcher.ts): it paces the looks. */
  watcher: RolloutWatcher;
  serviceId: string;
  /** The image the rollout is meant to reach. */
  targetImage: string;
  /** TIMEOUT. Time the engine could not be asked does not count; out of reach for this long in all, the outcome is unknown. */
  timeoutMs: number;
  now(): number;
  /** Called with each new observation worth a timeline entry. */
  onProgress(message: string): void;
}

const failedStates = new Set(["failed", "rejected"]);

/**
 * Follows a rolling update to its real end, the way `docker service update`
 * waits (docker/cli progress.go): UpdateStatus drives the verdict, and the
 * tasks must be running the target image. A `rollback_*` state is a failed
 * deploy even though the tasks converge, because they converge on the old image.
 */
export async function followRollout(opts: FollowOptions): Promise<RolloutOutcome> {
  const started = opts.now();
  const reported = new Set<string>();
  let lastProgress = "";
  let lastTaskError: string | undefined;
  let engineTrouble = false;
  /** Time the engine could not be asked: it does not count against the timeout, up to one timeout's worth. */
  let lostSince: number | undefined;
  let lostMs = 0;
  let lastError = "";

  const report = (key: string, message: string) => {
    if (reported.has(key)) return;
    reported.add(key);
    opts.onProgress(message);
  };

  for (;;) {
    let service: SwarmService | undefined;
    let tasks: SwarmTask[] = [];
    const seen = await opts.watcher.observe(opts.serviceId);
    if (!("error" in seen)) {
      ({ service, tasks } = seen);
      engineTrouble = false;
    } else {
      const err = seen.error;
      if (err instanceof SwarmNotFoundError) service = undefined;
      else if (err instanceof SwarmUnavailableError) {
        if (!engineTrouble) opts.onProgress(`lost the Docker engine while following the rollout: ${err.message}`);
        engineTrouble = true;
        lastError = err.message;
      } else throw err;
    }
    const lookedAt = opts.now();
    if (engineTrouble) lostSince ??= lookedAt;
    else if (lostSince !== undefined) {
      lostMs += lookedAt - lostSince;
      lostSince = undefined;
    }

    if (!engineTrouble) {
      if (!service) return { status: "failed", message: "the service was removed during the rollout", failureKind: "error", canRollback: false };

      for (const task of tasks) {
        if (task.image === opts.targetImage && failedStates.has(task.state)) {
          lastTaskError = `task ${task.id.slice(0, 12)} ${task.state}: ${task.error || task.message || "no error text"}`;
          report(`task-failed:${task.id}`, lastTaskError);
        }
      }
      // Swarm names the task that stopped the update; an unhealthy task ends `complete` with no error, so its state is all there is.
      const named = /task ([a-z0-9]{10,})/.exec(service.updateStatus?.message ?? "")?.[1];
      const culprit = named ? tasks.find((t) => t.id.startsWith(named)) : undefined;
      if (culprit && !lastTaskError) {
        lastTaskError = `task ${culprit.id.slice(0, 12)} ended ${culprit.state}: ${culprit.error || culprit.message || "no error text"}`;
        report(`task-failed:${culprit.id}`, lastTaskError);
      }
      const progress = describeProgress(service, tasks, opts.targetImage);
      if (progress.text !== lastProgress) {
        lastProgress = progress.text;
        opts.onProgress(progress.text);
      }
      const status = service.updateStatus;
      const withTaskError = (text: string) => (lastTaskError ? `${text} (${lastTaskError})` : text);

      // Outside swarm's rollback (which puts the previous spec back), the spec must hold our image: someone else's
      // update, paused or under way, is theirs, and never ours to roll back.
      const rollingBack = status?.state === "rollback_started" || status?.state === "rollback_completed" || status?.state === "rollback_paused";
      if (!rollingBack && service.image !== opts.targetImage) {
        return {
          status: "failed",
          message: `the service's image was changed to ${service.image} by someone else during the rollout`,
          failureKind: "error",
          canRollback: false,
        };
      }
      switch (status?.state) {
        case "rollback_completed":
          return { status: "rolled_back", message: withTaskError(`swarm rolled the update back: ${status.message ?? "rollback completed"}`) };
        case "rollback_started":
          report("rollback-started", `swarm is rolling the update back: ${status.message ?? ""}`.trim());
          break;
        case "rollback_paused":
          return {
            status: "failed",
            message: withTaskError(`swarm paused the rollback: ${status.message ?? ""}`),
            failureKind: "rollout",
            canRollback: false,
          };
        case "paused":
          return {
            status: "failed",
            message: withTaskError(`swarm paused the update: ${status.message ?? ""}`),
            failureKind: "rollout",
            canRollback: true,
          };
        case "completed":
        case undefined:
          if (progress.converged) return { status: "succeeded", message: `rollout completed: ${progress.text}` };
          break;
        case "updating":
          break;
      }
    }

    const lost = lostMs + (lostSince === undefined ? 0 : lookedAt - lostSince);
    if (engineTrouble && lost >= opts.timeoutMs) {
      // Swarm may have finished, failed or rolled back meanwhile: nothing can be said of the digest, so nothing is quarantined.
      return {
        status: "failed",
        message: `lost the Docker engine for ${Math.round(lost / 1000)} s while following the rollout, so its outcome is unknown (${lastError}); ${lastProgress || "no task seen yet"}`,
        failureKind: "error",
        canRollback: false,
      };
    }
    if (!engineTrouble && lookedAt - started - Math.min(lost, opts.timeoutMs) >= opts.timeoutMs) {
      const state = service?.updateStatus?.state ?? "not started";
      const stuck = describeStuckTasks(tasks, opts.targetImage);
      return {
        status: "failed",
        message: `timed out after ${Math.round(opts.timeoutMs / 1000)} s waiting for the rollout (update state: ${state}; ${lastProgress}${stuck ? `; ${stuck}` : ""})`,
        failureKind: "rollout",
        canRollback: true,
      };
    }
  }
}

/**
 * Groups tasks by slot (or node, for global services) and keeps the one swarm
 * wants alive, as docker/cli does; converged when every wanted task runs the
 * target image and the count reaches the desired replicas.
 */
export function describeProgress(service: SwarmService, tasks: SwarmTask[], targetImage: string): { text: string; converged: boolean } {
  const live = tasks.filter((t) => liveDesired.has(t.desiredState));
  const running = live.filter((t) => t.state === "running");
  const onTarget = running.filter((t) => t.image === targetImage);
  const stale = live.filter((t) => t.image !== targetImage);
  const desired = service.mode === "replicated" ? (service.replicas ?? 0) : Math.max(live.length, 1);
  const converged = onTarget.length >= desired && stale.length === 0;
  return { text: formatProgress({ running: onTarget.length, desired }), converged };
}
