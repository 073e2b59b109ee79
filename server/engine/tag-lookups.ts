/**
 * One tag → digest lookup at a time per registry login and `repo:tag`,
 * shared by every deployment that resolves that tag and by the poller's
 * cycle: a push matching 100 services costs one `HEAD`, not 100.
 *
 * Sharing never hands anyone an answer older than what they asked for. Each
 * asker brings a ticket (`ticket()`, from the same counter as the lookups'
 * starts): the moment it was admitted, or the moment its previous answer
 * came, or the push event that made it look again. It joins a lookup under
 * way only when that lookup started after its ticket; otherwise it starts a
 * new one, which later askers then join. So a deployment never resolves the
 * tag from a request that left before its push was announced (the tag may
 * have moved since: engine/resolve-tag.ts looks again while it names another
 * digest than the payload's).
 *
 * The last answer per key is kept, with when its lookup started, for those
 * who come after it ended with an older ticket: deployments that waited for
 * a rollout slot (engine/rollout-slots.ts) while it ran. A push coalesced
 * into a waiting deployment renews its ticket (engine/deployer.ts), so that
 * push's tag is looked at again.
 */
import { repoTagKey, type ImageRef } from "../domain/image-ref.js";
import type { RegistryPort, ResolvedManifest } from "../registry/registry-port.js";

/** Answers kept for deployments that come after the lookup ended: one per tag, for this many tags. */
const KEEP_ANSWERS = 1000;

type Ref = Pick<ImageRef, "registry" | "repository" | "tag">;

export function createTagLookups() {
  let counter = 0;
  let clients = 0;
  const clientIds = new WeakMap<object, number>();
  const inFlight = new Map<string, { started: number; answer: Promise<ResolvedManifest> }>();
  /** The last answer per key; insertion order is age, the oldest dropped past KEEP_ANSWERS. */
  const answered = new Map<string, { started: number; manifest: ResolvedManifest }>();
  let started = 0;
  let joined = 0;

  const keyOf = (client: RegistryPort, ref: Ref) => {
    let id = clientIds.get(client);
    if (id === undefined) clientIds.set(client, (id = ++clients));
    return `${id} ${repoTagKey(ref)}`;
  };

  return {
    /** A point in the lookups' order: a lookup started after it may answer for it. */
    ticket(): number {
      return ++counter;
    },
    /** The digest of `ref` through `client`, from a lookup that started after `since` (joined, or started now). */
    resolve(client: RegistryPort, ref: Ref, since: number): Promise<ResolvedManifest> {
      const key = keyOf(client, ref);
      const current = inFlight.get(key);
      if (current && current.started > since) {
        joined++;
        return current.answer;
      }
      const last = answered.get(key);
      if (last && last.started > since) {
        joined++;
        return Promise.resolve(last.manifest);
      }
      started++;
      const entry = { started: ++counter, answer: client.resolveDigest(ref) };
      inFlight.set(key, entry);
      const clear = () => {
        if (inFlight.get(key) === entry) inFlight.delete(key);
      };
      entry.answer.then((manifest) => {
        clear();
        if ((answered.get(key)?.started ?? 0) > entry.started) return;
        answered.delete(key);
        answered.set(key, { started: entry.started, manifest });
        if (answered.size > KEEP_ANSWERS) answered.delete(answered.keys().next().value!);
      }, clear);
      return entry.answer;
    },
    /** Lookups sent and lookups joined since the start (metrics, tests). */
    counts(): { started: number; joined: number } {
      return { started, joined };
    },
  };
}

export type TagLookups = ReturnType<typeof createTagLookups>;
