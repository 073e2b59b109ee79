import { automaticTriggers, isTerminal, waitingStatuses } from "../domain/deployment.js";
import { repoTagKey, tryParseImageRef } from "../domain/image-ref.js";
import { isStorageFailure } from "../store/database.js";
import type { DeploymentRecord } from "../store/deployment-store.js";
import { createFinalStatus } from "./final-status.js";
import { createCoalescing, type LaneView } from "./coalesce.js";
import { createWaitingRoom } from "./waiting-room.js";
import type { DeployerOptions } from "./deployer-options.js";
import { createDeploymentRunner } from "./run-deployment.js";
import { createRolloutSlots } from "./rollout-slots.js";
import { createRolloutWatcher } from "./rollout-watcher.js";
import { createTagLookups } from "./tag-lookups.js";

/** How often the shared watcher looks at every rollout under way: the Engine API sees 4 requests a second, however many. */
const WATCH_MS = 500;
/** DEPLOYER_MAX_ROLLOUTS when unset. */
export const DEFAULT_MAX_ROLLOUTS = 25;

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
  const lanes = new Map<string, LaneView>();
  /** Services whose drive() loop is under way (its active deployment was committed). */
  const lanesRunning = new Set<string>();
  const idleWaiters = new Set<() => void>();
  const listenerRuns = new Set<Promise<void>>();
  let stopped = false;

  const targetOf = (d: DeploymentRecord) => ((d.digest ?? d.digestHint) ? `${d.imageKey}@${d.digest ?? d.digestHint}` : undefined);

  const ends = createFinalStatus(opts, listenerRuns);
  const { recordFinal, supersede, finish, announce } = ends;

  const resolving = new Map<string, { lateEvent: boolean }>();
  const lookups = opts.tagLookups ?? createTagLookups();
  /**
   * Each deployment's admission ticket (engine/tag-lookups.ts): its first look at the tag starts after it. Held
   * while it is in a lane: set when it enters one, gone when it ends there or is superseded or undone in it.
   */
  const admittedAt = new Map<string, number>();
  const slots = createRolloutSlots({ max: opts.maxRollouts ?? DEFAULT_MAX_ROLLOUTS, store: opts.store });
  // One round for all rollouts every 500 ms (2 Engine API requests), or at the tests' pace when they set one.
  const watcher = createRolloutWatcher({ swarm: opts.swarm, clock: opts.clock, pollMs: opts.pollMs ?? WATCH_MS });
  const run = createDeploymentRunner({
    opts,
    now,
    sleep,
    pollMs,
    resolving,
    lookups,
    watcher,
    admittedAt: (id) => admittedAt.get(id) ?? lookups.ticket(),
    lendSlot: (id, during) => slots.lend(id, during),
  });
  const waiting = createWaitingRoom({
    store: opts.store,
    clock: opts.clock,
    log: opts.log,
    enqueue: (id) => void enqueue(id),
    finish,
    supersede,
    announce,
    announceWaiting: ends.announceWaiting,
  });
  const coalesceInto = createCoalescing(opts.store, lanes, waiting.parkedOf, resolving);
  /** A push coalesced into a deployment renews its ticket: the tag is looked up after that push, not before. */
  const coalesceTarget: typeof coalesceInto = (d) => {
    const id = coalesceInto(d);
    if (id && admittedAt.has(id)) admittedAt.set(id, lookups.ticket());
    return id;
  };

  /**
   * Whether a push or poller find names the digest and tag the service ran when it was matched (its
   * previousImage): a pipeline run again, the same image announced twice. A manual deploy of it still runs.
   */
  function runsAlready(dep: DeploymentRecord): boolean {
    if (!automaticTriggers.has(dep.trigger) || !dep.digestHint || !dep.previousImage) return false;
    const running = tryParseImageRef(dep.previousImage);
    const pushed = tryParseImageRef(dep.imageKey);
    return !!running && !!pushed && running.digest === dep.digestHint && repoTagKey(running) === repoTagKey(pushed);
  }

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
  function admit(id: string, how: { fresh?: boolean } = {}): Admitted {
    const dep = opts.store.getDeployment(id);
    const nothing = () => undefined;
    if (isTerminal(dep.status)) return { record: dep, after: () => dep, undo: nothing };
    const lane = lanes.get(dep.service) ?? {};
    lanes.set(dep.service, lane);
    // An id that was admitted in a transaction that then failed, and that no undo() reached: not in the record, so gone.
    if (lane.pending && !opts.store.findDeployment(lane.pending)) lane.pending = undefined;
    if (lane.active && !lanesRunning.has(dep.service) && !opts.store.findDeployment(lane.active)) lane.active = lane.pending = undefined;
    const before = { ...lane };
    let supersededParked: DeploymentRecord | undefined;
    // Only what this admission changed: a later write of the same batch may have committed a newer one into the lane since.
    const undo = () => {
      if (lane.pending === id) lane.pending = before.pending;
      if (lane.active === id) {
        lane.active = before.active;
        lane.pending = before.pending;
      }
      if (supersededParked) waiting.putBack(supersededParked);
      admittedAt.delete(id);
      dropIfEmpty();
    };
    const dropIfEmpty = () => {
      if (!lane.active && !lane.pending && !lanesRunning.has(dep.service) && lanes.get(dep.service) === lane) {
        lanes.delete(dep.service);
        if (lanes.size === 0) for (const wake of idleWaiters) wake();
      }
    };
    const place = (): Admitted => {
      // A push of the digest the service runs, with no rollout under way there, deploys nothing: it takes no one's place.
      // Only as it is recorded, from the service as it was just read: not when it comes back to the lane (a restart, an
      // approval, a wait's end), when its update may be under way or the service moved on. A waiting deployment of the
      // same tag is replaced as ever: the tag names the running digest again, and the waiting one is no longer wanted.
      const sameTagWaits = () => {
        const parked = waiting.parkedOf(dep.service);
        return parked !== undefined && opts.store.findCoalesceView(parked)?.imageKey === dep.imageKey;
      };
      if (how.fresh && !lane.active && runsAlready(dep) && !sameTagWaits()) {
        const skipped = recordFinal(id, "skipped", `the service already runs ${dep.digestHint}`);
        const after = () => {
          dropIfEmpty();
          return skipped ? announce(skipped) : opts.store.getDeployment(id);
        };
        return { record: skipped ?? dep, after, undo };
      }
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
      // In the lane from here on: the tag is looked up after this admission (renewed by each push coalesced into it).
      admittedAt.set(id, lookups.ticket());
      // What this one replaces: the deployment a policy's gate holds on the service, and the one queued.
      supersededParked = waiting.supersedeFor(dep.service, id);
      const superseded = [supersededParked];
      let start = false;
      if (lane.pending) {
        superseded.push(supersede(lane.pending, id));
        admittedAt.delete(lane.pending);
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
          for (const other of superseded) if (other) announce(other);
          if (start) void drive(dep.service);
          return opts.store.getDeployment(id); // `running` once started
        },
        undo,
      };
    };
    try {
      return place();
    } catch (err) {
      // A write of this admission was refused: what it changed in memory goes back, as for a transaction that did not commit.
      undo();
      throw err;
    }
  }

  /** admit() and after() at once, for callers with no transaction of their own open. */
  function enqueue(id: string): DeploymentRecord {
    return admit(id).after();
  }

  /**
   * A run skipped before its gates (the service runs it already, a quarantine): it deployed nothing, so it
   * should not have cost the request it superseded its turn. A move to another tag (deployer.follow) that
   * it replaced is asked for again, in the same transaction as the skip; an older push of the same tag is
   * not, as this one's look at the tag is the newer. Should a newer request wait behind it in the lane, that
   * one takes the place instead (and decides the same way when it ends).
   */
  function endWithoutDeploying(id: string, message: string, lane: LaneView): void {
    const dep = opts.store.getDeployment(id);
    const displaced = opts.store.displacedBy(id);
    if (!displaced || displaced.imageKey === dep.imageKey || !automaticTriggers.has(displaced.trigger)) {
      finish(id, "skipped", message);
      return;
    }
    const admitted: Admitted[] = [];
    let done: DeploymentRecord | undefined;
    try {
      done = opts.store.atomically(() => {
        const skipped = recordFinal(id, "skipped", message);
        if (!skipped) return undefined;
        if (lane.pending) {
          opts.store.handOver(displaced.id, lane.pending, `${id} deployed nothing; ${lane.pending}, a newer request behind it, takes its place`);
        } else {
          const why = `asked again: ${id}, which superseded ${displaced.id} (a move to ${displaced.imageKey}), deployed nothing (${message})`;
          opts.store.askAgain(displaced, why, { alongside: (rows) => rows.forEach((row) => admitted.push(admit(row.id))) });
        }
        return skipped;
      });
    } catch (err) {
      for (const a of admitted.reverse()) a.undo();
      throw err;
    }
    if (done) announce(done);
    for (const a of admitted) a.after();
  }

  /** Runs one deployment to its recorded end; only a write the database refused (disk full) escapes. */
  async function runToEnd(id: string, lane: LaneView): Promise<void> {
    if (stopped) return;
    const release = await slots.acquire(id);
    try {
      if (stopped) return;
      const outcome = await run(id);
      // A newer request that came while this one ran its gates supersedes it there (waiting-room.ts park()).
      if (outcome && waitingStatuses.has(outcome.status)) waiting.park(id, outcome.status, outcome.message, outcome.extra!.waitUntil!, lane.pending);
      else if (outcome?.deployedNothing) endWithoutDeploying(id, outcome.message, lane);
      else if (outcome) finish(id, outcome.status, outcome.message, outcome.extra);
    } catch (err) {
      if (isStorageFailure(err)) throw err;
      // Shutting down (the database may be closed already): the next start's reconcile() picks it up.
      if (stopped) return;
      opts.log.error({ err, deploymentId: id }, "deployment crashed");
      const current = opts.store.findDeployment(id);
      if (current && !isTerminal(current.status)) finish(id, "failed", `internal error: ${(err as Error).message}`, { failureKind: "error" });
    } finally {
      release();
      admittedAt.delete(id);
    }
  }

  async function drive(service: string): Promise<void> {
    const lane = lanes.get(service)!;
    lanesRunning.add(service);
    let storageWaitMs = 0;
    while (lane.active && !stopped) {
      try {
        await runToEnd(lane.active, lane);
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
    /** Calls `listener` with every deployment that starts to wait for a policy's gate; returns the unsubscribe. */
    onWaiting: ends.onWaiting,
    approve: waiting.approve,
    /** Rollouts under way, the bound, and the deployments waiting for a slot, first in line first. */
    rollouts: () => slots.state(),
    reject: waiting.reject,
    /** A service as the rollout watcher's next round lists it (engine/rollout-watcher.ts): the index's and the drift watcher's inspects join the rounds. */
    inspect: watcher.inspect,
    /**
     * A change the server did not make, recorded as it was seen (operations/record-drift.ts): running and
     * succeeded at once, ended by finish() so it is announced like any other. It takes no lane: nothing is sent.
     */
    recordObserved(id: string, image: string, message: string): DeploymentRecord {
      opts.store.transition(id, { status: "running", startedAt: now(), pinnedImage: image });
      return finish(id, "succeeded", message);
    },
    /** Calls `listener` with every deployment that reaches a final status; returns the unsubscribe. */
    onFinished: ends.onFinished,
    /**
     * Picks up what a crash interrupted: deployments whose update was sent are
     * followed to their end from what swarm reports now; the rest start over.
     */
    reconcile(): number {
      const unfinished = opts.store.findUnfinished();
      for (const dep of unfinished) {
        if (waitingStatuses.has(dep.status)) {
          waiting.restore(dep);
          continue;
        }
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
      waiting.stop();
    },
  };
}

export type Deployer = ReturnType<typeof createDeployer>;
