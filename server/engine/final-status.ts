import type { DeploymentStatus } from "../domain/deployment.js";
import { TransitionRefusedError, type DeploymentPatch, type DeploymentRecord } from "../store/deployment-store.js";
import type { DeployerOptions } from "./deployer-options.js";

type Listener = (dep: DeploymentRecord) => void | Promise<void>;

/**
 * The one place a deployment's end is recorded and announced (and a wait
 * for a policy's gate announced): metrics, the log line, then the
 * listeners. `listenerRuns` holds the listeners under way, for the
 * deployer's idle().
 */
export function createFinalStatus(opts: Pick<DeployerOptions, "store" | "holds" | "metrics" | "log" | "clock">, listenerRuns: Set<Promise<void>>) {
  const finished = new Set<Listener>();
  const waiting = new Set<Listener>();
  const now = () => opts.clock.now();

  function notify(listeners: Set<Listener>, dep: DeploymentRecord): void {
    for (const listener of listeners) {
      // A listener's trouble (a notification, a cleanup) must never break the deploy it was told about.
      const run = Promise.resolve()
        .then(() => listener(dep))
        .catch((err) => opts.log.error({ err, deploymentId: dep.id }, "a deployment listener failed"))
        .finally(() => listenerRuns.delete(run));
      listenerRuns.add(run);
    }
  }

  /** Writes a final status; announce() then tells everyone else. Apart so that the write can join a caller's transaction. */
  function recordFinal(id: string, status: DeploymentStatus, message: string, extra: DeploymentPatch = {}): DeploymentRecord | undefined {
    try {
      return opts.store.transition(id, { status, message, finishedAt: now(), ...extra }, message);
    } catch (err) {
      // A second final status for one deployment is a bug; the first one stands, and the server goes on.
      if (!(err instanceof TransitionRefusedError)) throw err;
      opts.log.error({ err, deploymentId: id }, "refused a status change the transition table does not allow");
      return undefined;
    }
  }

  /** `olderId` gave way to the newer request `newId`: a recordFinal(), so it joins the caller's transaction; announce() after. */
  function supersede(olderId: string, newId: string): DeploymentRecord | undefined {
    return recordFinal(olderId, "superseded", `superseded by ${newId}, a newer request for this service`, { supersededBy: newId });
  }

  function announce(done: DeploymentRecord): DeploymentRecord {
    const { id, status } = done;
    opts.metrics.deployments.inc({ trigger: done.trigger, outcome: status });
    if (done.updateSentAt && (status === "succeeded" || status === "failed" || status === "rolled_back")) {
      opts.metrics.rolloutDuration.observe({ outcome: status }, (now() - done.updateSentAt) / 1000);
    }
    opts.log.info({ deploymentId: id, service: done.service, status, digest: done.digest }, "deployment finished");
    notify(finished, done);
    return done;
  }

  /**
   * A deployment's end: the final status, then the quarantine of a digest
   * whose rollout failed (so no announcement can race ahead of it), then the
   * announcement.
   */
  function finish(id: string, status: DeploymentStatus, message: string, extra: DeploymentPatch = {}): DeploymentRecord {
    // One transaction: a final status recorded without its quarantine would never be finished again (the retry finds it final).
    const done = opts.store.atomically(() => {
      const recorded = recordFinal(id, status, message, extra);
      if (recorded?.digest && recorded.failureKind === "rollout" && (recorded.status === "failed" || recorded.status === "rolled_back")) {
        opts.holds.quarantine(recorded.service, recorded.digest, recorded.id, recorded.status);
      }
      return recorded;
    });
    return done ? announce(done) : opts.store.getDeployment(id);
  }

  const subscribe = (set: Set<Listener>) => (listener: Listener) => {
    set.add(listener);
    return () => set.delete(listener);
  };

  return {
    recordFinal,
    supersede,
    finish,
    announce,
    announceWaiting(dep: DeploymentRecord): void {
      opts.log.info({ deploymentId: dep.id, service: dep.service, status: dep.status, waitUntil: dep.waitUntil }, "deployment waiting");
      notify(waiting, dep);
    },
    onFinished: subscribe(finished),
    onWaiting: subscribe(waiting),
  };
}
