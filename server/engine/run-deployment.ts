import { automaticTriggers, isTerminal } from "../domain/deployment.js";
import { ENABLE_LABEL, followMove } from "../domain/service-selection.js";
import { decideGates } from "../domain/gates.js";
import { familiarRepoTag, parseImageRef, pinnedImage, repoKey, sameImage, tryParseImageRef, type ImageRef } from "../domain/image-ref.js";
import { readPolicy } from "../domain/policy.js";
import { isSelf, selfUpdateRefusal } from "../domain/self-update.js";
import { SHEPHERD_AUTH_LABEL } from "../registry/credentials.js";
import { RegistryError, type RegistryPort } from "../registry/registry-port.js";
import { isStorageFailure } from "../store/database.js";
import type { DeploymentPatch, DeploymentRecord, FailureKind } from "../store/deployment-store.js";
import type { DeployerOptions } from "./deployer-options.js";
import { followRollout, type RolloutOutcome } from "./follow-rollout.js";
import { createTagResolver, type TagResolverContext } from "./resolve-tag.js";
import type { RolloutWatcher } from "./rollout-watcher.js";
import { SwarmConflictError, SwarmNotFoundError, SwarmUnavailableError, type SwarmService } from "./swarm-port.js";

const conflictRetries = 5;
/** Sends of one update in all when the engine does not answer them and, looked at again, did not take them. */
const lostAnswerResends = 3;
const CREATED_TIMES_KEPT = 256;
const DEFAULT_APPROVAL_TTL_MS = 24 * 3_600_000;

export class DeployFailure extends Error {
  constructor(
    message: string,
    readonly failureKind: FailureKind,
  ) {
    super(message);
  }
}

class DeploySkipped extends Error {}

export interface RunContext extends TagResolverContext {
  opts: DeployerOptions;
  watcher: RolloutWatcher;
}

/** How a run ended; the deployer records it (deployer.ts finish()), with all that hangs off a final status. */
export interface RunOutcome {
  status: DeploymentRecord["status"];
  message: string;
  extra?: DeploymentPatch;
  /** Skipped by a check before its gates (the service runs it already, a quarantine, a hold): it took no turn. */
  deployedNothing?: boolean;
}

/**
 * One deployment from start to its final status: hold and quarantine checks,
 * tag → digest, the pinned update (retried on a stale version), then the
 * rollout followed to its end, with our own rollback when asked for. The
 * deployer's queue decides when it runs; this decides what happens.
 */
export function createDeploymentRunner(ctx: RunContext): (id: string) => Promise<RunOutcome | undefined> {
  const { opts, now, watcher } = ctx;
  const resolveTag = createTagResolver(ctx, (message) => new DeployFailure(message, "error"));
  /** Creation times read from registries, by `registry/repo@digest`: a cooling deployment is gated again when its wait ends. */
  const createdTimes = new Map<string, number | undefined>();
  /**
   * Updates the engine took whose "update sent" the database refused to record, by deployment: the run's retry
   * follows them. Their own-change marks stay until then, so the drift watcher does not record our update as
   * someone else's meanwhile. Both go once the run ends, whichever way (settled()).
   */
  const unrecordedUpdates = new Map<string, { serviceId: string; image: string }>();

  function settled(id: string): void {
    const unrecorded = unrecordedUpdates.get(id);
    if (!unrecorded) return;
    unrecordedUpdates.delete(id);
    opts.ownChanges?.unmark(unrecorded.serviceId, unrecorded.image);
  }

  /** Undefined when the deployment had ended already. A write the database refused escapes, and the deployer runs it again. */
  async function run(id: string): Promise<RunOutcome | undefined> {
    try {
      const outcome = await attempt(id);
      settled(id);
      return outcome;
    } catch (err) {
      if (!isStorageFailure(err)) settled(id);
      throw err;
    }
  }

  async function attempt(id: string): Promise<RunOutcome | undefined> {
    let dep = opts.store.getDeployment(id);
    if (isTerminal(dep.status)) return undefined;
    if (dep.status === "running" && dep.pinnedImage && dep.updateSentAt) {
      opts.store.addEvent(id, "resumed following the rollout after a restart");
      return follow(dep, dep.pinnedImage);
    }
    // Run before (requeued after a restart, or retried after a refused write): an update under way may be its own.
    const ranBefore = dep.startedAt !== null;
    let passedChecks = false;
    dep = opts.store.transition(id, { status: "running", startedAt: dep.startedAt ?? now() }, `started; resolving ${dep.image}`);
    try {
      // An update this deployment was sending when it lost track of it (a crash, a write the database refused): followed
      // to its end if the engine took it, whatever changed since (a hold, a label); otherwise the run starts over.
      if (dep.pinnedImage && !dep.updateSentAt) {
        const service = await getService(dep);
        if (await askEngine(() => tookUpdate(dep, service))) return await followTaken(dep, service, "before this deployment could record it");
        dep = opts.store.transition(id, { pinnedImage: null, updateVersion: null });
      }
      const hold = automaticTriggers.has(dep.trigger) ? opts.holds.find(dep.service) : undefined;
      if (hold) {
        throw new DeploySkipped(`the service is held since ${hold.deploymentId} (${hold.reason}); resume it or deploy by hand`);
      }
      const ref = parseImageRef(dep.imageKey);
      const digest = dep.digest ?? (await resolveTag(dep, ref, await registryOfService(dep)));
      if (dep.trigger === "manual" && opts.holds.liftQuarantine(dep.service, digest)) {
        opts.store.addEvent(id, `lifted the quarantine of ${digest} on this service: deployed by hand`);
      }
      const service = await getService(dep);
      if (service.labels[ENABLE_LABEL] === "false") throw new DeploySkipped(`the service is labelled ${ENABLE_LABEL}=false`);
      const selfRefused = isSelf(service) ? selfUpdateRefusal({ ...service, order: service.updatePolicy.order }) : undefined;
      if (selfRefused) throw new DeploySkipped(selfRefused);
      if (automaticTriggers.has(dep.trigger)) {
        const q = opts.holds.findQuarantine(dep.service, digest);
        if (q) throw new DeploySkipped(`${digest} is quarantined on this service: it ended badly in ${q.deploymentId} (${q.reason})`);
      }
      const running = tryParseImageRef(service.image);
      // The service as it is now, not as the push (or the service index it was matched in) saw it: changed meanwhile
      // to another repository, it is not this push's to update.
      if (automaticTriggers.has(dep.trigger) && running && repoKey(running) !== repoKey(ref)) {
        throw new DeploySkipped(`the service runs ${service.image} now, not ${familiarRepoTag(ref)}'s repository`);
      }
      if (running?.digest === digest && running.tag === ref.tag) {
        // This deployment's own update, recorded as being sent, was taken up above. One a server of an earlier version
        // sent before it could record it (its record has no such mark) shows as an update under way to it.
        if (!dep.updateSentAt && ranBefore && service.updateStatus?.state === "updating") {
          const image = pinnedImage(ref, digest);
          const marked = opts.store.transition(id, {
            pinnedImage: image,
            ...(service.previousImage ? { previousImage: service.previousImage } : {}),
          });
          return await followTaken(marked, service, "before this deployment could record it");
        }
        // Someone else's update to it is left to them, as drift is.
        throw new DeploySkipped(`the service already runs ${digest}`);
      }
      // A move to another tag (deployer.follow) is checked again now: the service may have moved on since the push came.
      if (automaticTriggers.has(dep.trigger) && running && running.tag !== ref.tag && !followMove(service, dep.imageKey)) {
        throw new DeploySkipped(`the service runs ${service.image}, and ${familiarRepoTag(ref)} is not a newer version its deployer.follow admits`);
      }
      // Past the checks that leave the service as it is: a skip from here on (an unreadable label at the gate, the service
      // changed while the update was on its way) came after this deployment took its turn, and is no "deployed nothing".
      passedChecks = true;
      if (automaticTriggers.has(dep.trigger)) {
        const held = await gate(dep, service, ref, digest);
        if (held) return held;
      }
      const image = pinnedImage(ref, digest);
      if (isSelf(service)) {
        opts.store.addEvent(id, "this is the deploy server's own service: the update stops this process, and the next one follows the rollout");
      }
      opts.ownChanges?.mark(service.id, image);
      try {
        const sent = await update(dep, service, image);
        if (sent.taken) return await followTaken(sent.taken.dep, sent.taken.service, `but its answer was lost (${sent.taken.reason})`);
        // Should this write be refused (a full disk), the retry must know the engine has the update: it follows it.
        unrecordedUpdates.set(id, { serviceId: service.id, image });
        dep = opts.store.transition(
          id,
          { updateSentAt: now() },
          `update sent: ${image} (service version ${sent.version})${sent.warnings.length ? `; engine warnings: ${sent.warnings.join("; ")}` : ""}`,
        );
        unrecordedUpdates.delete(id);
      } finally {
        // Kept while the update waits to be recorded (above); the mark of an update the engine refused goes at once.
        if (!unrecordedUpdates.has(id)) opts.ownChanges?.unmark(service.id, image);
      }
      return await follow(dep, image);
    } catch (err) {
      if (err instanceof DeploySkipped) return { status: "skipped", message: err.message, ...(passedChecks ? {} : { deployedNothing: true }) };
      if (err instanceof DeployFailure) return { status: "failed", message: err.message, extra: { failureKind: err.failureKind } };
      throw err;
    }
  }

  /**
   * The service's policy gates (domain/gates.ts) for a push or the poller's
   * find: an outcome that ends the run here (watch only) or parks it in a
   * waiting status, or undefined to go on and update.
   */
  async function gate(dep: DeploymentRecord, service: SwarmService, ref: ImageRef, digest: string): Promise<RunOutcome | undefined> {
    const read = readPolicy(service.labels);
    if (!read.ok) throw new DeploySkipped(`the service's policy labels cannot be read: ${read.errors.join("; ")}`);
    // An approval of this digest that a newer request of it superseded (the same image announced again) is not asked for twice.
    const standing = read.policy.approve && dep.approvedAt === null ? opts.store.standingApproval(dep.service, digest) : undefined;
    if (standing) {
      dep = opts.store.transition(
        dep.id,
        { approvedBy: standing.approvedBy, approvedAt: standing.approvedAt },
        `the approval of ${standing.id} by ${standing.approvedBy} carries over: the same digest ${digest}`,
      );
    }
    const state = {
      now: now(),
      firstSeenAt: opts.store.firstRecorded(digest) ?? dep.createdAt,
      approved: dep.approvedAt !== null,
      approvalTtlMs: opts.approvalTtlMs ?? DEFAULT_APPROVAL_TTL_MS,
      digest,
    };
    let decision = decideGates(read.policy, state);
    // The registry's creation time can only shorten a cool-down the push time has not ended yet.
    if (decision.kind === "wait" && decision.status === "cooling_down") {
      decision = decideGates(read.policy, { ...state, createdAt: await builtAt(dep, ref, digest, service.labels) });
    }
    if (decision.kind === "go") return undefined;
    if (decision.kind === "watch") return { status: "skipped", message: decision.message };
    const status = decision.kind === "approval" ? "awaiting_approval" : decision.status;
    return { status, message: decision.message, extra: { waitUntil: decision.until } };
  }

  /** When the image was built, from the registry (kept per digest); undefined, with a timeline entry, when it cannot say. */
  async function builtAt(dep: DeploymentRecord, ref: ImageRef, digest: string, labels: Record<string, string>): Promise<number | undefined> {
    const key = `${repoKey(ref)}@${digest}`;
    if (createdTimes.has(key)) return createdTimes.get(key);
    let created: number | undefined;
    try {
      created = await registryOf(labels).imageCreatedAt(ref, digest);
    } catch (err) {
      if (!(err instanceof RegistryError)) throw err;
      opts.store.addEvent(dep.id, `could not read when ${digest} was built (${err.message}); the cool-down counts from the push`);
      return undefined;
    }
    if (createdTimes.size >= CREATED_TIMES_KEPT) createdTimes.delete(createdTimes.keys().next().value!);
    createdTimes.set(key, created);
    return created;
  }

  /** The registry client of the service's login: REGISTRIES_FILE's lines of its shepherd.auth.config id, else the default logins. */
  function registryOf(labels: Record<string, string>): RegistryPort {
    const id = labels[SHEPHERD_AUTH_LABEL];
    return id && opts.registryFor ? opts.registryFor(id) : opts.registry;
  }

  /**
   * registryOf() for a deployment before its service is read for the update. Only when REGISTRIES_FILE names
   * logins: the look joins the rollout watcher's next round, so concurrent deployments share one request.
   */
  async function registryOfService(dep: DeploymentRecord): Promise<RegistryPort> {
    if (!opts.registryFor) return opts.registry;
    const service = await askEngine(() => watcher.inspect(dep.serviceId));
    return service ? registryOf(service.labels) : opts.registry;
  }

  /** A look at the engine in a run: out of reach, the deployment fails with why. */
  async function askEngine<T>(look: () => Promise<T>): Promise<T> {
    try {
      return await look();
    } catch (err) {
      if (err instanceof SwarmUnavailableError) throw new DeployFailure(`Docker engine unreachable: ${err.message}`, "error");
      throw err;
    }
  }

  /** The deployment's service by the id it was matched by, else by name; undefined when it is gone. */
  const findServiceOf = async (dep: DeploymentRecord) => (await opts.swarm.findService(dep.serviceId)) ?? (await opts.swarm.findService(dep.service));

  async function getService(dep: DeploymentRecord): Promise<SwarmService> {
    const service = await askEngine(() => findServiceOf(dep));
    if (!service) throw new DeployFailure(`the service ${dep.service} no longer exists`, "error");
    return service;
  }

  /**
   * Sends the update. Just before each send the deployment records what it sends (pinnedImage, previousImage and
   * the service version it is sent against), so that a server that loses track of it can tell whether the engine
   * took it; a refusal clears the mark. Swarm moves a service's version while it works, so a stale version is
   * retried with a fresh inspect. An update that got no answer (or an error that does not say the engine refused
   * it) is settled by looking at the service once the engine answers again: `taken` when it has the update, else
   * the update is sent again, a few times at most.
   */
  async function update(dep: DeploymentRecord, first: SwarmService, image: string) {
    let service = first;
    const auth = opts.registryAuthFor(parseImageRef(image).registry, first.labels[SHEPHERD_AUTH_LABEL] || undefined);
    const recordedPrevious = dep.previousImage;
    let conflicts = 0;
    let lostAnswers = 0;
    for (;;) {
      dep = opts.store.transition(dep.id, {
        pinnedImage: image,
        previousImage: service.image,
        serviceId: service.id,
        updateVersion: service.version,
      });
      try {
        const policies = dep.trigger === "poll" ? opts.pollUpdate : undefined;
        const { warnings } = await opts.swarm.updateService(service.id, service.version, { image, registryAuth: auth, ...policies });
        return { warnings, version: service.version, taken: undefined };
      } catch (err) {
        const refused =
          err instanceof SwarmConflictError || err instanceof SwarmNotFoundError || (err instanceof SwarmUnavailableError && !err.answerLost);
        if (!refused) {
          const reason = (err as Error).message;
          const seen = await afterLostAnswer(dep, reason);
          if (seen.taken) return { warnings: [], version: service.version, taken: { dep, service: seen.service, reason } };
          if (++lostAnswers < lostAnswerResends) {
            changedMeanwhile(first, seen.service, () =>
              opts.store.transition(dep.id, { pinnedImage: null, previousImage: recordedPrevious, updateVersion: null }),
            );
            opts.store.addEvent(dep.id, `the engine did not answer the update (${reason}), and did not take it; sending it again`);
            service = seen.service;
            continue;
          }
        }
        dep = opts.store.transition(dep.id, { pinnedImage: null, previousImage: recordedPrevious, updateVersion: null });
        if (err instanceof SwarmConflictError && ++conflicts < conflictRetries) {
          const stale = service.version;
          service = await getService(dep);
          changedMeanwhile(first, service);
          opts.store.addEvent(dep.id, `service version ${stale} was stale (update out of sequence); retrying`);
          continue;
        }
        if (err instanceof SwarmConflictError) throw new DeployFailure(`the service kept changing under us: ${err.message}`, "error");
        if (err instanceof SwarmNotFoundError) throw new DeployFailure(`the service ${dep.service} no longer exists`, "error");
        // An answer that came back (a 400 for a spec the engine will not take) is a refusal; no answer at all, an outage.
        if (err instanceof SwarmUnavailableError && (err.status === undefined || err.status >= 500)) {
          throw new DeployFailure(`Docker engine unreachable: ${err.message}`, "error");
        }
        throw new DeployFailure(`the engine refused the update: ${(err as Error).message}`, "error");
      }
    }
  }

  /**
   * Before an update goes again (its version was stale, or its answer lost and not taken): the service as read
   * now must still be the one the checks passed on. Someone else's change since (`docker service update --image`,
   * `deployer.enable=false`) is theirs; sending the update again would silently undo it, as the engine's version
   * check exists to prevent. Only the engine moving the version (its own rollout bookkeeping) is retried.
   */
  function changedMeanwhile(first: SwarmService, now: SwarmService, clearSendRecord?: () => void): void {
    const disabled = now.labels[ENABLE_LABEL] === "false" && first.labels[ENABLE_LABEL] !== "false";
    if (now.image === first.image && !disabled) return;
    // The send recorded for the update that is not going again (already cleared after a stale version).
    clearSendRecord?.();
    throw new DeploySkipped(
      disabled
        ? `the service was labelled ${ENABLE_LABEL}=false while its update was on its way; left alone`
        : `the service changed while its update was on its way: it runs ${now.image} now; left to whoever changed it`,
    );
  }

  /**
   * Whether the engine took an update it did not answer, once it answers again, looked at every poll. Out of
   * reach for TIMEOUT in all, the deployment fails, and whether the engine took the update is unknown: the record
   * keeps what was sent, so the drift watcher takes the change, should it come, for this deployment's.
   */
  async function afterLostAnswer(dep: DeploymentRecord, lost: string): Promise<{ taken: boolean; service: SwarmService }> {
    const since = now();
    let reason = lost;
    for (;;) {
      try {
        const service = await findServiceOf(dep);
        if (!service) throw new DeployFailure(`the service ${dep.service} no longer exists`, "error");
        return { taken: await tookUpdate(dep, service), service };
      } catch (err) {
        if (!(err instanceof SwarmUnavailableError)) throw err;
        reason = err.message;
      }
      if (now() - since >= opts.timeoutMs) {
        throw new DeployFailure(
          `the engine did not answer the update (${lost}) and stayed out of reach for ${Math.round((now() - since) / 1000)} s (${reason}); whether it took the update is unknown`,
          "error",
        );
      }
      await ctx.sleep(ctx.pollMs);
    }
  }

  /**
   * Whether the engine took the update the deployment recorded it was sending: the service's spec has the pinned
   * image, or swarm has rolled it back since. A rollback puts the replaced image back and drops the previous spec,
   * and swarm moves the version as it works, so what tells our rolled-back update from someone else's is the
   * service's task history: tasks of the pinned image.
   */
  async function tookUpdate(dep: DeploymentRecord, service: SwarmService): Promise<boolean> {
    if (!dep.pinnedImage || dep.updateVersion === null) return false;
    if (sameImage(service.image, dep.pinnedImage)) return true;
    const rolledBack = service.updateStatus?.state.startsWith("rollback") ?? false;
    if (!rolledBack || service.version <= dep.updateVersion || !dep.previousImage || !sameImage(service.image, dep.previousImage)) return false;
    const tasks = await opts.swarm.listTasks(service.id);
    return tasks.some((t) => sameImage(t.image, dep.pinnedImage!));
  }

  /** Records, and follows to its end, an update the engine took though this deployment could not record it then. */
  async function followTaken(dep: DeploymentRecord, service: SwarmService, when: string): Promise<RunOutcome> {
    const image = dep.pinnedImage!;
    const recorded = opts.store.transition(
      dep.id,
      { updateSentAt: now(), serviceId: service.id },
      `the engine took the update to ${image}${dep.updateVersion === null ? "" : ` (service version ${dep.updateVersion})`} ${when}; following it`,
    );
    settled(dep.id); // only once recorded: a refused write here is retried too
    return follow(recorded, image);
  }

  async function follow(dep: DeploymentRecord, image: string): Promise<RunOutcome> {
    const watch = (targetImage: string, timeoutMs: number) =>
      followRollout({
        watcher,
        serviceId: dep.serviceId,
        targetImage,
        timeoutMs,
        now,
        onProgress: (message) => opts.store.addEvent(dep.id, message),
      });
    const outcome: RolloutOutcome = await watch(image, opts.timeoutMs);
    if (outcome.status !== "failed") {
      return { status: outcome.status, message: outcome.message, extra: outcome.status === "rolled_back" ? { failureKind: "rollout" } : {} };
    }
    if (outcome.canRollback && opts.rollbackOnFailure && dep.previousImage) {
      return rollBack(dep, outcome.message, (target) => watch(target, opts.timeoutMs));
    }
    return { status: "failed", message: outcome.message, extra: { failureKind: outcome.failureKind } };
  }

  async function rollBack(dep: DeploymentRecord, reason: string, watch: (target: string) => Promise<RolloutOutcome>): Promise<RunOutcome> {
    try {
      const service = await getService(dep);
      // rollback=previous puts back the service's previous spec, whatever it is: only while that is the one this update replaced.
      if (service.image !== dep.pinnedImage || (service.previousImage !== undefined && service.previousImage !== dep.previousImage)) {
        return {
          status: "failed",
          message: `${reason}; not rolled back: the service runs ${service.image} over ${service.previousImage ?? "no previous spec"} now, not this update over ${dep.previousImage}`,
          extra: { failureKind: "rollout" },
        };
      }
      opts.store.addEvent(dep.id, `${reason}; rolling back to ${dep.previousImage} (ROLLBACK_ON_FAILURE)`);
      await opts.swarm.rollbackService(service.id, service.version);
      const back = await watch(dep.previousImage!);
      if (back.status === "succeeded" || back.status === "rolled_back") {
        return { status: "rolled_back", message: `rolled back to ${dep.previousImage} after: ${reason}`, extra: { failureKind: "rollout" } };
      }
      return { status: "failed", message: `${reason}; the rollback failed too: ${back.message}`, extra: { failureKind: "rollout" } };
    } catch (err) {
      const message = err instanceof DeployFailure ? err.message : (err as Error).message;
      return { status: "failed", message: `${reason}; the rollback could not be started: ${message}`, extra: { failureKind: "rollout" } };
    }
  }

  return run;
}
