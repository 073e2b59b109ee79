import { randomUUID } from "node:crypto";
import { familiarRepoTag, parseImageRef, repoTagKey } from "../domain/image-ref.js";
import type { DeploymentRecord } from "../store/deployment-store.js";
import { getManagedService, type OperationsDeps } from "./operations-deps.js";
import { requestDeployments } from "./request-deployment.js";

/**
 * A deploy by hand of a tag (resolved like a push) or of a digest of the
 * service's own repository. It lifts the hold, and the quarantine of the
 * digest it deploys: a person chose it.
 */
export async function deployService(
  deps: OperationsDeps,
  input: { service: string; tag?: string; digest?: string; requestedBy: string },
): Promise<DeploymentRecord> {
  const service = await getManagedService(deps, input.service);
  const current = parseImageRef(service.image);
  const ref = { registry: current.registry, repository: current.repository, tag: input.tag ?? current.tag };
  const imageKey = repoTagKey(ref);
  const what = input.digest ?? `${familiarRepoTag(ref)}`;
  const recorded = requestDeployments(
    deps,
    { kind: "manual", eventKey: randomUUID(), imageKey, digestHint: input.digest, requestedBy: input.requestedBy },
    [
      {
        service: service.name,
        serviceId: service.id,
        image: familiarRepoTag(ref),
        imageKey,
        digestHint: input.digest,
        digest: input.digest,
        previousImage: service.image,
        trigger: "manual",
        requestedBy: input.requestedBy,
        message: `manual deploy of ${what} requested by ${input.requestedBy}; queued`,
      },
    ],
    () => {
      deps.holds.release(service.name);
      if (input.digest) deps.holds.liftQuarantine(service.name, input.digest);
    },
  );
  if (recorded.duplicate) throw new Error("a random event key collided");
  return recorded.deployments[0]!;
}
