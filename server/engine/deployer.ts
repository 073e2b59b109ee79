import { isTerminal } from "../domain/deployment.js";
import { isStorageFailure } from "../store/database.js";
import { TransitionRefusedError, type DeploymentPatch, type DeploymentRecord } from "../store/deployment-store.js";
import { createCoalescing } from "./coalesce.js";
import type { DeployerOptions } from "./deployer-options.js";
import { createDeploymentRunner } from "./run-deployment.js";

/** How long a deployment waits before trying again a write the database refused, doubling up to the max. */
const STORAGE_RETRY_MS = 1000;
const STORAGE_RETRY_MAX_MS = 30_000;

export interface Admitted {
  /** The deployment as admit() left it: queued, or skipped. */
  record: DeploymentRecord;
  /** Call once the transaction admit() ran in has committed; returns the deployment as it is then. */
  after(): DeploymentRecord;
  /** Call instead when that transaction did not commit: the lane is put back as it was before. */
  undo(): void;
}

/**
 * The one writer per service. Each service has at most one deployment
 * running and one waiting: a newer request replaces the waiting one
 * (`superseded`), and a request for the digest already running or waiting
 * ends `skipped` without touching the service.
 */
export function createDeployer(opts: DeployerOptions) {
  const now = () => opts.clock.now();
  const sleep = (ms: number) => opts.clock.sleep(ms);
  const pollMs = opts.pollMs ?? 250;
  const lanes = new Map<string, { active?: string; pending?: string }>();
  /** Services whose drive() loop is under way (its active deployment was committed). */
  const lanesRunning = new Set<string>();
  const idleWaiters = new Set<() => void>();
  const finishedListeners = new Set<(done: DeploymentRecord) => void | Promise<void>>();
  const listenerRuns = new Set<Promise<void>>();
  let stopped = false;

  const targetOf = (d: DeploymentRecord) => ((d.digest ?? d.digestHint) ? `${d.imageKey}@${d.digest ?? d.digestHint}` : undefined);

  /** Writes a final status; announce() then tells everyone else. Apart so that the write can join a caller's transaction. */
  function recordFinal(id: string, status: DeploymentRecord["status"], message: string, extra: DeploymentPatch = {}): DeploymentRecord | undefined {
    try {
      return opts.store.transition(id, { status, message, finishedAt: now(), ...extra }, message);
    } catch (err) {
      // A second final status for one deployment is a bug; the first one stands, and the server goes on.
      if (!(err instanceof TransitionRefusedError)) throw err;
      opts.log.error({ err, deploymentId: id }, "refused a status change the transition table does not allow");
      return undefined;
    }
  }

  /**
   * The one place a deployment's end is recorded: the final status, then the
   * quarantine of a digest whose rollout failed (so no announcement can race
   * ahead of it), then the announcement.
   */
  function finish(id: string, status: DeploymentRecord["status"], message: string, extra: DeploymentPatch = {}): DeploymentRecord {
    const done = recordFinal(id, status, message, extra);
    if (!done) return opts.store.getDeployment(id);
    if (done.digest && done.failureKind === "rollout" && (done.status === "failed" || done.status === "rolled_back")) {
      opts.holds.quarantine(done.service, done.digest, done.id, done.status);
    }
    return announce(done);
  }

  function announce(done: DeploymentRecord): DeploymentRecord {
    const { id, status } = done;
    opts.metrics.deployments.inc({ trigger: done.trigger, outcome: status });
    if (done.updateSentAt && (status === "succeeded" || status === "failed" || status === "rolled_back")) {
      opts.metrics.rolloutDuration.observe({ outcome: status }, (now() - done.updateSentAt) / 1000);
    }
    opts.log.info({ deploymentId: id, service: done.service, status, digest: done.digest }, "deployment finished");
    for (const listener of finishedListeners) {
      // A listener's trouble (a notification, a cleanup) must never break the deploy that reached its end.
      const run = Promise.resolve()
        .then(() => listener(done))
        .catch((err) => opts.log.error({ err, deploymentId: id }, "a deployment-finished listener failed"))
        .finally(() => listenerRuns.delete(run));
      listenerRuns.add(run);
    }
    return done;
  }

  const run = createDeploymentRunner({ opts, now, sleep, pollMs });
  const coalesceTarget = createCoalescing(opts.store, lanes);

  /**
   * Places a recorded deployment in its service's lane: skipped when its
   * digest is already running or waiting, else waiting (replacing, and
   * superseding, the one that waited) or started. Every write it makes can
   * join the caller's open transaction, so a webhook's deployments and the
   * ones they supersede commit together; `after()`, called once that has
   * committed, announces the final statuses and starts the rollout, so
   * nothing reaches the engine or a callback before the commit. Should that
   * commit fail, the lane still names `id`: its run finds no such deployment
   * and ends, and a superseded one stays `queued` until reconcile() at the
   * next start picks it up.
   */
  function admit(id: string): Admitted {
    const dep = opts.store.getDeployment(id);
    const nothing = () => undefined;
    if (isTerminal(dep.status)) return { record: dep, after: () => dep, undo: nothing };
    const lane = lanes.get(dep.service) ?? {};
    lanes.set(dep.service, lane);
    // An id that was admitted in a transaction that then failed, and that no undo() reached: not in the record, so gone.
    if (lane.pending && !opts.store.findDeployment(lane.pending)) lane.pending = undefined;
    if (lane.active && !lanesRunning.has(dep.service) && !opts.store.findDeployment(lane.active)) lane.active = lane.pending = undefined;
    const before = { ...lane };
    const undo = () => {
      lane.active = before.active;
      lane.pending = before.pending;
    };
    const target = targetOf(dep);
    for (const otherId of [lane.active, lane.pending]) {
      if (!otherId || !target) continue;
      const other = opts.store.getDeployment(otherId);
      if (targetOf(other) === target) {
        const skipped = recordFinal(
          id,
          "skipped",
          `the same digest is already ${other.status === "running" ? "being deployed" : "queued"} by ${other.id}`,
        );
        return skipped
          ? { record: skipped, after: () => announce(skipped), undo: nothing }
          : { record: dep, after: () => opts.store.getDeployment(id), undo: nothing };
      }
    }
    let superseded: DeploymentRecord | undefined;
    let start = false;
    if (lane.pending) {
      superseded = recordFinal(lane.pending, "superseded", `superseded by ${id}, a newer request for this service`);
      lane.pending = id;
    } else if (lane.active) {
      lane.pending = id;
    } else {
      lane.active = id;
      start = true;
    }
    return {
      record: dep,
      after: () => {
        if (superseded) announce(superseded);
        if (start) void drive(dep.service);
        return opts.store.getDeployment(id); // `running` once started
      },
      undo,
    };
  }

  /** admit() and after() at once, for callers with no transaction of their own open. */
  function enqueue(id: string): DeploymentRecord {
    return admit(id).after();
  }

  /** Runs one deployment to its recorded end; only a write the database refused (disk full) escapes. */
  async function runToEnd(id: string): Promise<void> {
    try {
      const outcome = await run(id);
      if (outcome) finish(id, outcome.status, outcome.message, outcome.extra);
    } catch (err) {
      if (isStorageFailure(err)) throw err;
      opts.log.error({ err, deploymentId: id }, "deployment crashed");
      const current = opts.store.findDeployment(id);
      if (current && !isTerminal(current.status)) finish(id, "failed", `internal error: ${(err as Error).message}`, { failureKind: "error" });
    }
  }

  async function drive(service: string): Promise<void> {
    const lane = lanes.get(service)!;
    lanesRunning.add(service);
    let storageWaitMs = 0;
    while (lane.active && !stopped) {
      try {
        await runToEnd(lane.active);
        storageWaitMs = 0;
      } catch (err) {
        if (!isStorageFailure(err)) throw err;
        // Nothing of the failed write was recorded. Keep the deployment and run it again from what the
        // record and swarm say once there is space: a restart's reconcile, without the restart.
        storageWaitMs = Math.min(STORAGE_RETRY_MAX_MS, Math.max(STORAGE_RETRY_MS, storageWaitMs * 2));
        opts.log.error(
          { err, deploymentId: lane.active, retryInMs: storageWaitMs },
          "the database could not be written (disk full or failing); retrying",
        );
        await sleep(storageWaitMs);
        continue;
      }
      lane.active = lane.pending;
      lane.pending = undefined;
    }
    lanesRunning.delete(service);
    if (!lane.active && !lane.pending) lanes.delete(service);
    if (lanes.size === 0) for (const wake of idleWaiters) wake();
  }

  return {
    admit,
    coalesceTarget,
    enqueue,
    /** Calls `listener` with every deployment that reaches a final status; returns the unsubscribe. */
    onFinished(listener: (done: DeploymentRecord) => void | Promise<void>): () => void {
      finishedListeners.add(listener);
      return () => finishedListeners.delete(listener);
    },
    /**
     * Picks up what a crash interrupted: deployments whose update was sent are
     * followed to their end from what swarm reports now; the rest start over.
     */
    reconcile(): number {
      const unfinished = opts.store.findUnfinished();
      for (const dep of unfinished) {
        if (dep.status === "running" && !dep.updateSentAt) {
          opts.store.transition(dep.id, { status: "queued" }, "requeued after a restart");
        }
        enqueue(dep.id);
      }
      return unfinished.length;
    },
    /** Resolves when no deployment is running or waiting and the finish listeners are done (tests, RUN_ONCE_AND_EXIT). */
    async idle(): Promise<void> {
      if (lanes.size > 0) {
        await new Promise<void>((resolve) => {
          const wake = () => {
            idleWaiters.delete(wake);
            resolve();
          };
          idleWaiters.add(wake);
        });
      }
      while (listenerRuns.size) await Promise.allSettled([...listenerRuns]);
    },
    stop(): void {
      stopped = true;
    },
  };
}

export type Deployer = ReturnType<typeof createDeployer>;
