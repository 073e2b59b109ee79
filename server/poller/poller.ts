import { familiarRepoTag, repoTagKey, tryParseImageRef } from "../domain/image-ref.js";
import type { ServiceFilter } from "../domain/service-filter.js";
import type { SwarmService } from "../engine/swarm-port.js";
import type { RegistryClient } from "../registry/registry-client.js";
import { RegistryError, type RegistryPort } from "../registry/registry-port.js";
import type { AppriseNotifier } from "../notify/apprise-notifier.js";
import type { Clock } from "../domain/clock.js";
import { queuePollDeployment, type PollDeployDeps } from "./poll-deploy.js";
import { createFollowLookups } from "./poll-follow.js";
import type { TagListMemory } from "../store/tag-lists.js";
import { planCycle, type ImageGroup } from "./poll-plan.js";
import { pullBudget, pullsFor } from "./pull-budget.js";
import { createTagLookups, type TagLookups } from "../engine/tag-lookups.js";

export type PollRegistry = RegistryPort & Partial<Pick<RegistryClient, "lastRateLimit" | "requestCount">>;

export interface PollerOptions extends PollDeployDeps {
  /** The real client also reports rate limits and request counts; fakes may not. */
  registry: PollRegistry;
  /** The client that logs in as a `shepherd.auth.config` id (REGISTRIES_FILE). */
  registryFor?: (authConfig: string) => PollRegistry;
  notifier?: Pick<AppriseNotifier, "imageUnavailable" | "imageAvailable">;
  filter?: ServiceFilter;
  ignoreList: string[];
  sleepTimeMs: number;
  clock: Clock;
  /** Tag lookups shared with the deployer's (engine/tag-lookups.ts): a cycle joins one started after it began. */
  tagLookups?: TagLookups;
  /** Where the tag lists of followed repositories are kept across restarts; only in memory without it. */
  tagLists?: TagListMemory;
}

export interface CycleResult {
  services: number;
  lookups: number;
  /** Tag lists asked for, one per repository that services follow versions of. */
  tagLists: number;
  /** Deployments this cycle queued. */
  deployments: string[];
  /** Manifest requests the default login's registry client sent during the cycle (webhook lookups meanwhile included). */
  registryRequests?: { head: number; get: number };
}

/**
 * Shepherd's loop, rebuilt on the deploy engine: once at start and then
 * SLEEP_TIME after each cycle ends, look every selected service's tag up
 * (one HEAD per distinct tag) and queue a `poll` deployment of the resolved
 * digest where the service runs another. Nothing that goes wrong in a cycle
 * (engine, registry, a service deleted meanwhile) stops the loop.
 */
export function createPoller(opts: PollerOptions) {
  const { clock, log } = opts;
  /** Registries (per login: Docker Hub counts per account) whose pull budget ran out, left alone until then. */
  const restingUntil = new Map<string, number>();
  const clientOf = (group: Pick<ImageGroup, "authConfig">) => (group.authConfig && opts.registryFor?.(group.authConfig)) || opts.registry;
  const follows = createFollowLookups(log, opts.tagLists);
  const budgetKey = (group: { ref: { registry: string }; authConfig?: string }) => `${group.ref.registry} ${group.authConfig ?? ""}`;
  const lookups = opts.tagLookups ?? createTagLookups();
  let chain: Promise<unknown> = Promise.resolve();
  let abort: AbortController | undefined;
  let loop: Promise<void> | undefined;

  async function lookUp(group: ImageGroup, cycleTicket: number): Promise<string | undefined> {
    const image = familiarRepoTag(group.ref);
    try {
      const { digest } = await lookups.resolve(clientOf(group), group.ref, cycleTicket);
      opts.metrics.pollLookups.inc({ registry: group.ref.registry, result: "ok" });
      for (const s of group.services) opts.notifier?.imageAvailable(s.name, image);
      return digest;
    } catch (err) {
      if (!(err instanceof RegistryError)) throw err;
      opts.metrics.pollLookups.inc({ registry: group.ref.registry, result: err.kind });
      if (err.kind === "rate_limited") {
        const { backoffMs } = pullBudget(clientOf(group).lastRateLimit?.(group.ref.registry), opts.sleepTimeMs);
        restingUntil.set(budgetKey(group), clock.now() + backoffMs);
        log.warn({ registry: group.ref.registry, backoffMs }, "registry rate limit reached; leaving it alone for a while");
        return undefined;
      }
      for (const s of group.services) {
        log.warn(
          { service: s.name, image, reason: err.message },
          `Error updating service ${s.name}! Image ${image} does not exist or it is not available`,
        );
        void opts.notifier?.imageUnavailable(s.name, image);
      }
      return undefined;
    }
  }

  async function cycle(): Promise<CycleResult> {
    const cycleAt = clock.now();
    const cycleTicket = lookups.ticket();
    const before = opts.registry.requestCount?.();
    const result: CycleResult = { services: 0, lookups: 0, tagLists: 0, deployments: [] };
    opts.metrics.pollCycles.inc();
    let services: SwarmService[];
    try {
      services = await opts.swarm.listServices();
    } catch (err) {
      log.error({ reason: (err as Error).message }, "poll cycle: could not list swarm services; trying again next cycle");
      return result;
    }
    result.services = services.length;
    const plan = planCycle(services, {
      filter: opts.filter,
      ignoreList: opts.ignoreList,
      heldReason: (name) => opts.holds.find(name)?.reason,
      busyWith: (name) => opts.history.findUnfinishedOf(name)?.id,
    });
    for (const { service, reason } of plan.left) log.debug({ service, reason }, "left alone this cycle");
    const budgets = new Map<string, number | undefined>();
    const resting = (group: { ref: { registry: string }; authConfig?: string }) => (restingUntil.get(budgetKey(group)) ?? 0) > clock.now();
    /** Queues `service` onto `digest` unless the registry's pull budget is spent ("spent"); whether it queued one, or one already waits at a gate. */
    const deploy = async (
      service: SwarmService,
      group: ImageGroup,
      digest: string,
      follow?: string,
    ): Promise<"queued" | "waiting" | "none" | "spent"> => {
      const registry = group.ref.registry;
      const budget = budgetKey(group);
      const rateOf = () => clientOf(group).lastRateLimit?.(registry);
      if (!budgets.has(budget)) budgets.set(budget, pullBudget(rateOf(), opts.sleepTimeMs).spendable);
      const spendable = budgets.get(budget);
      if (spendable !== undefined && pullsFor(service) > spendable) {
        const { backoffMs } = pullBudget(rateOf(), opts.sleepTimeMs);
        restingUntil.set(budget, clock.now() + backoffMs);
        log.warn(
          { registry, service: service.name, remaining: rateOf()?.remaining, backoffMs },
          "pull budget of the registry spent; deploys from it wait",
        );
        return "spent";
      }
      const outcome = await queuePollDeployment(opts, { service, group, digest, cycleAt, follow });
      if (!outcome) return "none";
      if ("waiting" in outcome) return "waiting";
      result.deployments.push(outcome.queued);
      if (spendable !== undefined) budgets.set(budget, spendable - pullsFor(service));
      return "queued";
    };
    // Services following versions first: one that moves to a newer tag is not looked at for its own tag's digest as well.
    const moved = new Set<string>();
    const heads = new Map<string, Promise<string | undefined>>();
    for (const followed of plan.follow) {
      if (resting(followed)) continue;
      result.tagLists++;
      for (const candidate of await follows.candidates(clientOf(followed), followed)) {
        const group: ImageGroup = {
          key: repoTagKey(candidate.ref),
          ref: candidate.ref,
          authConfig: followed.authConfig,
          services: [candidate.service],
        };
        const headKey = `${group.key} ${group.authConfig ?? ""}`;
        if (!heads.has(headKey)) {
          result.lookups++;
          heads.set(headKey, lookUp(group, cycleTicket));
        }
        const digest = await heads.get(headKey)!;
        if (!digest) continue;
        const outcome = await deploy(candidate.service, group, digest, candidate.reason);
        // A newer tag it did not move to (quarantined or rejected there, say) leaves its own tag to be looked at; one whose
        // move waits at a gate does not: a deployment of its own tag would supersede that move, and the next cycle ask for it again.
        if (outcome === "queued" || outcome === "waiting") moved.add(candidate.service.id);
        if (outcome === "spent") break;
      }
    }
    for (const group of plan.groups) {
      if (resting(group)) {
        log.debug({ registry: group.ref.registry, image: group.key }, "registry resting after its pull budget ran out");
        continue;
      }
      const services = group.services.filter((s) => !moved.has(s.id));
      if (services.length === 0) continue;
      result.lookups++;
      const digest = await lookUp({ ...group, services }, cycleTicket);
      if (!digest) continue;
      for (const service of services) {
        if (tryParseImageRef(service.image)?.digest === digest) {
          log.debug({ service: service.name }, `No updates to service ${service.name}!`);
          continue;
        }
        if ((await deploy(service, group, digest)) === "spent") break;
      }
    }
    const after = opts.registry.requestCount?.();
    if (before && after) result.registryRequests = { head: after.head - before.head, get: after.get - before.get };
    log.info({ ...result, deployments: result.deployments.length, ms: clock.now() - cycleAt }, "poll cycle finished");
    return result;
  }

  /** One cycle, after any cycle still running; never rejects. */
  function runOnce(): Promise<CycleResult> {
    const next = chain.then(cycle).catch((err: unknown) => {
      log.error({ err }, "poll cycle failed; the loop goes on");
      return { services: 0, lookups: 0, tagLists: 0, deployments: [] } satisfies CycleResult;
    });
    chain = next;
    return next;
  }

  return {
    runOnce,
    /** Cycles now and then SLEEP_TIME after each one ends, until stop(). */
    start(): void {
      if (loop) return;
      const controller = (abort = new AbortController());
      loop = (async () => {
        while (!controller.signal.aborted) {
          await runOnce();
          if (controller.signal.aborted) break;
          log.debug({ sleepMs: opts.sleepTimeMs }, "sleeping before the next poll cycle");
          await clock.sleep(opts.sleepTimeMs, controller.signal);
        }
      })();
    },
    /** Ends the loop after the cycle under way, if any. */
    async stop(): Promise<void> {
      abort?.abort();
      await loop;
      loop = undefined;
    },
  };
}

export type Poller = ReturnType<typeof createPoller>;
