/**
 * The image half of the Engine API port: what IMAGE_AUTOCLEAN_LIMIT needs on
 * the node this server runs on. Kept apart from dockerode-swarm.ts, which
 * spreads these methods into the SwarmPort it builds.
 */
import type Docker from "dockerode";
import { imageSegments } from "./docker-client.js";
import { SwarmConflictError, type LocalImage, type SwarmPort } from "./swarm-port.js";

type Call = <T>(request: (abortSignal: AbortSignal) => Promise<T>, deadline?: "ping" | "read" | "write") => Promise<T>;

export function createDockerodeImages(docker: Docker, call: Call): Pick<SwarmPort, "listImages" | "listContainerImageIds" | "removeImageReference"> {
  return {
    async listImages(repository) {
      const images = (await call((abortSignal) =>
        // @types/dockerode omits abortSignal on listImages; docker-modem honours it.
        docker.listImages({ filters: { reference: [repository] }, abortSignal } as Docker.ListImagesOptions),
      )) as Array<{ Id: string; RepoTags?: string[] | null; RepoDigests?: string[] | null; Created: number }>;
      return images.map((i): LocalImage => ({
        id: i.Id,
        // The engine lists an untagged image as "<none>:<none>" / "<none>@<none>".
        references: [...(i.RepoTags ?? []), ...(i.RepoDigests ?? [])].filter((r) => !r.startsWith("<none>")),
        created: i.Created,
      }));
    },

    async listContainerImageIds() {
      const containers = (await call((abortSignal) => docker.listContainers({ all: true, abortSignal } as Docker.ContainerListOptions))) as Array<{
        ImageID?: string;
      }>;
      return new Set(containers.map((c) => c.ImageID).filter((id): id is string => Boolean(id)));
    },

    async removeImageReference(reference) {
      const segments = imageSegments(reference);
      await call(async (abortSignal) => {
        try {
          // No force, no noprune: the engine refuses what a container still needs.
          await docker.getImage(segments).remove({ abortSignal } as object);
        } catch (err) {
          const e = err as { statusCode?: number; json?: { message?: string }; message?: string };
          if (e.statusCode === 409) throw new SwarmConflictError(e.json?.message ?? e.message ?? "image is in use");
          throw err;
        }
      }, "write");
    },
  };
}
