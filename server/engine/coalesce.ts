import { automaticTriggers, isTerminal } from "../domain/deployment.js";
import { tagVersion } from "../domain/follow.js";
import { tryParseImageRef } from "../domain/image-ref.js";
import type { CoalesceView, DeploymentStore, NewDeployment } from "../store/deployment-store.js";

/** What the deployer's lanes hold per service: the deployment under way and the one waiting behind it. */
export interface LaneView {
  active?: string;
  pending?: string;
}

export function createCoalescing(
  store: Pick<DeploymentStore, "findCoalesceView" | "latestOf">,
  lanes: ReadonlyMap<string, LaneView>,
  /** The deployment a policy's gate holds on the service (engine/waiting-room.ts). */
  parkedOf: (service: string) => string | undefined,
  /** Deployments resolving their tag right now (engine/resolve-tag.ts), to be told of a push that came meanwhile. */
  resolving: ReadonlyMap<string, { lateEvent: boolean }>,
) {
  /** A deployment a push of `d`'s `repo:tag` may be coalesced into: a push's or the poller's, for that `repo:tag`. */
  const sameTag = (other: CoalesceView | undefined, d: NewDeployment): other is CoalesceView =>
    !!other && other.imageKey === d.imageKey && automaticTriggers.has(other.trigger);

  /**
   * A deployment of the same repository to a newer version than `d`'s tag
   * (deployer.follow): a push of the older version, arriving after it, would
   * only move the service back, so that deployment covers it.
   */
  const newerVersion = (other: CoalesceView | undefined, d: NewDeployment): other is CoalesceView => {
    // The same repo:tag (every push of a burst) is never a newer version: no need to parse the two references.
    if (!other || other.imageKey === d.imageKey || isTerminal(other.status) || !automaticTriggers.has(other.trigger)) return false;
    const [a, b] = [tryParseImageRef(other.imageKey), tryParseImageRef(d.imageKey)];
    if (!a || !b || a.registry !== b.registry || a.repository !== b.repository || a.tag === b.tag) return false;
    const [va, vb] = [tagVersion(a.tag ?? ""), tagVersion(b.tag ?? "")];
    return !!va && !!vb && va.compare(vb) > 0;
  };

  /**
   * The deployment a push's event can be coalesced into instead of being a
   * deployment of its own, on the same service and `repo:tag`: first one that
   * resolved the tag to the very digest the event names (under way, waiting,
   * or, as the service's latest, done and still running there); else one that
   * has not resolved the tag yet, as it resolves it after this event came and
   * so deploys what the event announced or something newer. An event naming
   * no digest, or another one, while a rollout is under way gets a deployment
   * of its own, queued behind it: only resolving the tag again can tell
   * whether it announced a newer push. Read inside the transaction that
   * records the event, so the lanes cannot move in between.
   */
  function coalesceTarget(d: NewDeployment): string | undefined {
    const lane = lanes.get(d.service);
    const parked = parkedOf(d.service);
    const inLane = lane ? [lane.active, lane.pending].map((id) => (id ? store.findCoalesceView(id) : undefined)) : [];
    // Under way, queued, or waiting for its gate (engine/waiting-room.ts).
    const current = [...inLane, parked ? store.findCoalesceView(parked) : undefined];
    const newer = current.find((o) => newerVersion(o, d));
    if (newer) return newer.id;
    const sameDigest = current.find((o) => sameTag(o, d) && !!d.digestHint && o.digest === d.digestHint && !isTerminal(o.status));
    if (sameDigest) return sameDigest.id;
    if (!lane) {
      if (!d.digestHint || tryParseImageRef(d.previousImage ?? "")?.digest !== d.digestHint) return undefined;
      const latest = store.latestOf(d.service);
      return sameTag(latest, d) && latest.status === "succeeded" && latest.digest === d.digestHint ? latest.id : undefined;
    }
    const sameTagInLane = inLane.filter((o) => sameTag(o, d));
    const unresolved = sameTagInLane.find((o) => o.status === "queued" && !o.digest);
    if (unresolved) return unresolved.id;
    // Resolving the tag now: it may have asked before this push moved the tag, so it is told to look once more.
    const resolvingNow = sameTagInLane.find((o) => !o.digest && resolving.has(o.id));
    if (resolvingNow) resolving.get(resolvingNow.id)!.lateEvent = true;
    return resolvingNow?.id;
  }

  return coalesceTarget;
}
