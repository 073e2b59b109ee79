import { AppError } from "../domain/app-error.js";
import { randomUUID } from "node:crypto";
import { familiarRepoTag, parseImageRef, tryParseImageRef } from "../domain/image-ref.js";
import type { DeploymentRecord } from "../store/deployment-store.js";
import { getManagedService, type OperationsDeps } from "./operations-deps.js";
import { requestDeployments } from "./request-deployment.js";

/**
 * Redeploys a recorded digest (not a tag, not swarm's one-level PreviousSpec)
 * and holds the service, so that the next webhook or poll does not roll
 * forward to the digest that was just rolled back.
 */
export async function rollbackService(deps: OperationsDeps, input: { service: string; to?: string; requestedBy: string }): Promise<DeploymentRecord> {
  const service = await getManagedService(deps, input.service);
  const running = tryParseImageRef(service.image)?.digest;
  const target = input.to ? deps.store.findDeployment(input.to) : deps.history.newestSucceededOtherThan(service.name, running);
  if (input.to && !target) throw new AppError("NOT_FOUND", `deployment ${input.to} does not exist`);
  if (input.to && target && target.service !== service.name) {
    throw new AppError("UNPROCESSABLE", `deployment ${input.to} is not a deployment of ${service.name}`);
  }
  if (!target) throw new AppError("UNPROCESSABLE", `nothing to roll back to: ${service.name} has no earlier successful deployment of another digest`);
  // Back to what ran there: a digest whose rollout failed (and is quarantined) is no place to go back to.
  if (target.status !== "succeeded") {
    throw new AppError(
      "UNPROCESSABLE",
      `deployment ${target.id} ended ${target.status}; roll back to one that succeeded, or deploy that digest by hand`,
    );
  }
  if (!target.digest) throw new AppError("UNPROCESSABLE", `deployment ${target.id} never resolved a digest, so there is nothing to redeploy`);

  const ref = parseImageRef(target.imageKey);
  const recorded = requestDeployments(
    deps,
    { kind: "rollback", eventKey: randomUUID(), imageKey: target.imageKey, digestHint: target.digest, requestedBy: input.requestedBy },
    [
      {
        service: service.name,
        serviceId: service.id,
        image: familiarRepoTag(ref),
        imageKey: target.imageKey,
        digestHint: target.digest,
        digest: target.digest,
        previousImage: service.image,
        trigger: "rollback",
        requestedBy: input.requestedBy,
        message: `rollback to ${target.digest} (deployment ${target.id}) requested by ${input.requestedBy}; queued`,
      },
    ],
    ([dep]) => deps.holds.hold(service.name, dep!.id, `rolled back to ${target.id} by ${input.requestedBy}`, input.requestedBy),
  );
  if (recorded.duplicate) throw new Error("a random event key collided");
  return recorded.deployments[0]!;
}
