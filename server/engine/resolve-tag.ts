import type { parseImageRef } from "../domain/image-ref.js";
import { RegistryError, type RegistryPort } from "../registry/registry-port.js";
import type { DeploymentRecord } from "../store/deployment-store.js";
import type { DeployerOptions } from "./deployer-options.js";
import type { TagLookups } from "./tag-lookups.js";

export interface TagResolverContext {
  opts: Pick<DeployerOptions, "registry" | "store" | "registryRetryMs">;
  now(): number;
  sleep(ms: number): Promise<void>;
  pollMs: number;
  /** Deployments resolving their tag now, and whether a push of that tag came meanwhile (engine/coalesce.ts). */
  resolving: Map<string, { lateEvent: boolean }>;
  /** The lookups shared with the other deployments of the tag and with the poller (engine/tag-lookups.ts). */
  lookups: TagLookups;
  /** The ticket each deployment took when it was admitted: its first look joins only a lookup started after it. */
  admittedAt(id: string): number;
  /** Waits with the deployment's rollout slot lent to the next in line (engine/rollout-slots.ts). */
  lendSlot<T>(id: string, during: () => Promise<T>): Promise<T>;
}

type ImageRef = ReturnType<typeof parseImageRef>;
type Found = { digest: string; at: number };
type Missing = { missing: string; at: number };

const REGISTRY_RETRY_FIRST_MS = 1000;
const REGISTRY_RETRY_MAX_MS = 10_000;
/**
 * A registry may announce a push before its tag names the new manifest (the
 * distribution registry sends the notification from the manifest's PUT and
 * moves the tag after it), so a tag that still names another digest than the
 * payload's, or that is not there at all yet (a new tag), is looked at again,
 * at the rollout's polling pace, this many times.
 */
const TAG_SETTLE_LOOKS = 8;

/**
 * The tag's digest now, for one deployment. A registry that does not answer
 * is tried again, waiting 1 s, then twice as long each time up to 10 s, for
 * DEPLOYER_REGISTRY_RETRY: a push made while its registry is down (or the way
 * to it is) still ends on its service, poller or not. Any other answer
 * (refused credentials; a tag not found, once a push's settling looks are
 * spent) fails the deployment. A push of the tag that came
 * while it was being resolved (coalesced into this deployment) makes it look
 * once more, so what that push announced is not missed.
 */
export function createTagResolver(ctx: TagResolverContext, failure: (message: string) => Error) {
  const { opts, now, sleep, pollMs, resolving, lookups } = ctx;

  /**
   * One answer from a lookup that started after `since`; returns it with the
   * ticket of its arrival, which a look after it passes on, so that it is
   * never answered from the same or an older request.
   */
  function lookOnce(registry: RegistryPort, dep: DeploymentRecord, ref: ImageRef, since: number): Promise<Found>;
  /** Settling, a tag that is not there yet answers `missing` instead of failing the deployment. */
  function lookOnce(registry: RegistryPort, dep: DeploymentRecord, ref: ImageRef, since: number, settling: boolean): Promise<Found | Missing>;
  async function lookOnce(registry: RegistryPort, dep: DeploymentRecord, ref: ImageRef, since: number, settling = false): Promise<Found | Missing> {
    let giveUpAt = now() + (opts.registryRetryMs ?? 0);
    for (let waitMs = REGISTRY_RETRY_FIRST_MS; ; waitMs = Math.min(REGISTRY_RETRY_MAX_MS, waitMs * 2)) {
      try {
        const { digest } = await lookups.resolve(registry, ref, since);
        return { digest, at: lookups.ticket() };
      } catch (err) {
        if (!(err instanceof RegistryError)) throw err;
        since = lookups.ticket();
        if (settling && err.kind === "not_found") return { missing: err.message, at: since };
        if (err.kind !== "unreachable" || now() + waitMs > giveUpAt) throw failure(`could not resolve ${dep.image} on its registry: ${err.message}`);
        opts.store.addEvent(dep.id, `could not reach the registry of ${dep.image} (${err.message}); trying again in ${waitMs / 1000} s`);
        // Not a rollout while it waits: its slot goes to the next deployment meanwhile. The time it then waits in
        // line for a slot again is not the registry's: DEPLOYER_REGISTRY_RETRY counts from the moment it has one.
        const asleep = now();
        await ctx.lendSlot(dep.id, () => sleep(waitMs));
        giveUpAt += Math.max(0, now() - asleep - waitMs);
      }
    }
  }

  /** `registry`: the client of the service's login (shepherd.auth.config), the default one without a label. */
  return async function resolve(dep: DeploymentRecord, ref: ImageRef, registry: RegistryPort = opts.registry): Promise<string> {
    const state = { lateEvent: false };
    resolving.set(dep.id, state);
    try {
      // Only a push announces a digest: then a tag naming another one, or none yet, may not have moved yet.
      const settling = !!dep.digestHint;
      let answer = await lookOnce(registry, dep, ref, ctx.admittedAt(dep.id), settling);
      for (let look = 1; look < TAG_SETTLE_LOOKS && settling && !("digest" in answer && answer.digest === dep.digestHint); look++) {
        if (look === 1 && "missing" in answer)
          opts.store.addEvent(dep.id, `${dep.image} is not on its registry yet (${answer.missing}); looking again`);
        await sleep(pollMs);
        answer = await lookOnce(registry, dep, ref, answer.at, settling);
      }
      if ("missing" in answer) throw failure(`could not resolve ${dep.image} on its registry: ${answer.missing}`);
      let found: Found = answer;
      while (state.lateEvent) {
        state.lateEvent = false;
        opts.store.addEvent(dep.id, `another push of ${dep.image} came while resolving it; resolving again`);
        // Now, not the last answer's ticket: the push may have come after a lookup that is still under way started.
        found = await lookOnce(registry, dep, ref, lookups.ticket());
      }
      const digest = found.digest;
      const note =
        dep.digestHint && dep.digestHint !== digest
          ? `resolved ${dep.image} to ${digest}; the payload named ${dep.digestHint}, which the tag does not point to, so the tag's digest wins`
          : `resolved ${dep.image} to ${digest}`;
      opts.store.transition(dep.id, { digest }, note);
      return digest;
    } finally {
      resolving.delete(dep.id);
    }
  };
}
