import type { Logger } from "pino";
import { familiarName, parseImageRef, repoKey, tryParseImageRef } from "../domain/image-ref.js";
import type { LocalImage, SwarmPort } from "./swarm-port.js";
import type { DeploymentRecord } from "../store/deployment-store.js";

export interface PruneChoice {
  /** Images beyond the limit that no container uses, with their references in the repository. */
  remove: Array<{ id: string; references: string[] }>;
  /** Images beyond the limit kept because a container, running or stopped, uses them. */
  inUse: string[];
}

/**
 * IMAGE_AUTOCLEAN_LIMIT: of the local images of one repository (the full
 * name, registry port included), keep the `limit` newest and choose the rest
 * for removal, except those a container still uses. Shepherd compared the
 * counts as strings ("10" < "5"), cut `host:5000/app` at the port, and ran
 * `docker container prune` on the whole node first; none of that here.
 */
export function choosePrune(images: LocalImage[], repository: string, limit: number, used: Set<string>): PruneChoice {
  const wanted = repoKey(parseImageRef(repository));
  const own = images
    .map((image) => ({
      image,
      references: image.references.filter((r) => {
        const ref = tryParseImageRef(r);
        return ref !== undefined && repoKey(ref) === wanted;
      }),
    }))
    .filter((i) => i.references.length > 0);
  const unique = [...new Map(own.map((i) => [i.image.id, i])).values()];
  unique.sort((a, b) => b.image.created - a.image.created || (a.image.id < b.image.id ? -1 : 1));
  const choice: PruneChoice = { remove: [], inUse: [] };
  for (const { image, references } of unique.slice(limit)) {
    if (used.has(image.id)) choice.inUse.push(image.id);
    else choice.remove.push({ id: image.id, references });
  }
  return choice;
}

/**
 * A deployer listener: after a deploy that changed a service, prunes old
 * images of its repository on this node (the engine this server talks to),
 * as Shepherd did on the node it ran on. Other repositories' tags of a shared
 * image are left, so such an image stays.
 */
export function createImageAutoclean(opts: { swarm: SwarmPort; log: Logger; limit: number }) {
  return async (dep: DeploymentRecord): Promise<void> => {
    if (dep.status !== "succeeded" || !dep.updateSentAt) return;
    const repository = familiarName(parseImageRef(dep.imageKey));
    const [images, used] = await Promise.all([opts.swarm.listImages(repository), opts.swarm.listContainerImageIds()]);
    const choice = choosePrune(images, repository, opts.limit, used);
    let removed = 0;
    for (const image of choice.remove) {
      for (const reference of image.references) {
        try {
          await opts.swarm.removeImageReference(reference);
        } catch (err) {
          opts.log.warn({ image: image.id, reference, reason: (err as Error).message }, "autoclean: could not remove an old image reference");
        }
      }
      removed++;
    }
    opts.log.info(
      { repository, limit: opts.limit, removed, keptInUse: choice.inUse.length },
      `Cleaning up old docker images, leaving last ${opts.limit}`,
    );
  };
}
