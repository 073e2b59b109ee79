import { setMaxListeners } from "node:events";
import type { Logger } from "pino";
import type { Clock } from "../domain/clock.js";
import { waitingStatuses, type DeploymentStatus } from "../domain/deployment.js";
import { AppError } from "../domain/app-error.js";
import { isStorageFailure } from "../store/database.js";
import type { DeploymentPatch, DeploymentRecord, DeploymentStore } from "../store/deployment-store.js";

/**
 * Deployments a policy's gate holds (cooling_down, scheduled,
 * awaiting_approval), outside the deployer's queue so they never block a
 * service: at most one per service, the newest; a newer request for the
 * service supersedes it. A timer on the server's clock queues it again when
 * its wait ends (or rejects an approval request that expired); a restart
 * parks again what the record says is waiting. All state is in the record:
 * this only holds the timers.
 */
export interface WaitingRoomDeps {
  store: DeploymentStore;
  clock: Clock;
  log: Logger;
  /** Into the service's lane, to run (its gates again, then the update). */
  enqueue(id: string): void;
  /** The deployer's final-status path (deployer.ts finish()). */
  finish(id: string, status: DeploymentStatus, message: string, extra?: DeploymentPatch): DeploymentRecord;
  /** The deployer's write of a supersession (final-status.ts supersede()), joining an open transaction; announce() after the commit. */
  supersede(olderId: string, newId: string): DeploymentRecord | undefined;
  /** Tells the listeners of a final status supersede() wrote, once it committed. */
  announce(dep: DeploymentRecord): void;
  /** Tells the listeners a deployment started to wait. */
  announceWaiting(dep: DeploymentRecord): void;
}

/** How soon a wake-up the database refused is tried again, doubling up to the most. */
const STORAGE_RETRY_MS = 1000;
const STORAGE_RETRY_MAX_MS = 30_000;

export function createWaitingRoom(deps: WaitingRoomDeps) {
  const parked = new Map<string, string>();
  /** Ends every wait's timer (deployer.stop()). One listener per waiting deployment: no bound on their number. */
  const stopping = new AbortController();
  setMaxListeners(0, stopping.signal);

  function isWaiting(id: string): DeploymentRecord | undefined {
    const dep = deps.store.findDeployment(id);
    return dep && waitingStatuses.has(dep.status) ? dep : undefined;
  }

  /** The wait is over: queued again (or, an approval request, rejected). Out of the room only once that is written. */
  function wake(id: string): void {
    const dep = isWaiting(id);
    if (!dep || parked.get(dep.service) !== id) return; // approved, superseded or rejected meanwhile
    if (dep.status === "awaiting_approval") {
      deps.finish(id, "rejected", `nobody approved it by ${new Date(dep.waitUntil ?? deps.clock.now()).toISOString()}: the request expired`);
      parked.delete(dep.service);
      return;
    }
    deps.store.transition(
      id,
      { status: "queued", waitUntil: null },
      `${dep.status === "scheduled" ? "the deploy window opened" : "cooled down"}; queued`,
    );
    parked.delete(dep.service);
    deps.enqueue(id);
  }

  /**
   * Wakes it once its wait is over; while the database refuses the write (disk full), it stays waiting and tries
   * again, backing off. Nothing wakes once the room is stopped: the next start's reconcile() waits again.
   */
  function timeWake(id: string, waitMs: number, retryMs = STORAGE_RETRY_MS): void {
    void deps.clock
      .sleep(waitMs, stopping.signal)
      .then(() => {
        if (!stopping.signal.aborted) wake(id);
      })
      .catch((err: unknown) => {
        if (!isStorageFailure(err)) return deps.log.error({ err, deploymentId: id }, "waking a waiting deployment failed");
        deps.log.error({ err, deploymentId: id, retryInMs: retryMs }, "waking a waiting deployment: the database could not be written; retrying");
        timeWake(id, retryMs, Math.min(STORAGE_RETRY_MAX_MS, retryMs * 2));
      });
  }

  function arm(dep: DeploymentRecord): void {
    parked.set(dep.service, dep.id);
    timeWake(dep.id, Math.max(0, (dep.waitUntil ?? deps.clock.now()) - deps.clock.now()));
  }

  /** The older deployment waiting on `service`, if any, taken out of the room for `newId` to supersede. */
  function takeOlder(service: string, newId: string): string | undefined {
    const older = parked.get(service);
    if (!older || older === newId || !isWaiting(older)) return undefined;
    parked.delete(service);
    return older;
  }

  /** A deployment someone may approve or reject now; 404 or 409 otherwise. */
  function awaiting(id: string): DeploymentRecord {
    const dep = deps.store.findDeployment(id);
    if (!dep) throw new AppError("NOT_FOUND", `no deployment ${id}`);
    if (dep.status !== "awaiting_approval") throw new AppError("CONFLICT", `deployment ${id} is ${dep.status}, not awaiting_approval`);
    return dep;
  }

  /** Out of the room, once what ended its wait is written. */
  function leave(dep: DeploymentRecord): void {
    if (parked.get(dep.service) === dep.id) parked.delete(dep.service);
  }

  return {
    /** The deployment waiting on this service, if any. */
    parkedOf(service: string): string | undefined {
      return parked.get(service);
    },

    /**
     * A run stopped at a gate: recorded as waiting (replacing, and superseding, an older one), then timed. When a
     * newer request waits behind it in the service's lane, it is recorded as waiting and superseded by that one at
     * once: parked, this older push would deploy over the newer one when its wait ends. One transaction either way:
     * should the database refuse it, the run is retried from where it was, nothing half recorded.
     */
    park(id: string, status: DeploymentStatus, message: string, waitUntil: number, newer?: string): DeploymentRecord {
      const olderId = newer ? undefined : parked.get(deps.store.getDeployment(id).service);
      const { dep, ended } = deps.store.atomically(() => {
        const dep = deps.store.transition(id, { status, waitUntil }, message);
        if (newer) return { dep, ended: deps.supersede(id, newer) };
        return {
          dep,
          ended: olderId && olderId !== id && isWaiting(olderId) ? deps.supersede(olderId, id) : undefined,
        };
      });
      if (newer) {
        if (ended) deps.announce(ended);
        return ended ?? dep;
      }
      arm(dep);
      if (ended) deps.announce(ended);
      deps.announceWaiting(dep);
      return dep;
    },

    /**
     * A newer request for the service was admitted: the one waiting there is
     * superseded, in the caller's transaction; announce the returned record
     * once it commits.
     */
    supersedeFor(service: string, newId: string): DeploymentRecord | undefined {
      const older = takeOlder(service, newId);
      if (!older) return undefined;
      try {
        return deps.supersede(older, newId);
      } catch (err) {
        parked.set(service, older); // not written: it still waits
        throw err;
      }
    },

    /** After a restart: waits again for what the record says is waiting (a wait already over ends at once). */
    restore(dep: DeploymentRecord): void {
      arm(dep);
    },

    /** deployments:write approved it: queued again, to pass the remaining gates (a window) and deploy. Once. */
    approve(id: string, by: string): DeploymentRecord {
      const dep = awaiting(id);
      const approved = deps.store.transition(
        id,
        { status: "queued", approvedBy: by, approvedAt: deps.clock.now(), waitUntil: null },
        `approved by ${by}; queued`,
      );
      leave(dep);
      deps.enqueue(id);
      return approved;
    },

    reject(id: string, by: string): DeploymentRecord {
      const dep = awaiting(id);
      const rejected = deps.finish(id, "rejected", `rejected by ${by}`);
      leave(dep);
      return rejected;
    },

    /** Stops every wait's timer; what waits stays waiting in the record. */
    stop(): void {
      stopping.abort();
    },

    /** A supersedeFor() whose transaction did not commit: the deployment waits again (its timer never stopped). */
    putBack(dep: DeploymentRecord): void {
      if (!parked.has(dep.service)) parked.set(dep.service, dep.id);
    },
  };
}

export type WaitingRoom = ReturnType<typeof createWaitingRoom>;
