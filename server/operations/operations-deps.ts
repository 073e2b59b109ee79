import { AppError } from "../domain/app-error.js";
import type { ServiceFilter } from "../domain/service-filter.js";
import type { Deployer } from "../engine/deployer.js";
import { exclusionReason } from "../domain/service-selection.js";
import { SwarmUnavailableError, type SwarmPort, type SwarmService } from "../engine/swarm-port.js";
import type { DeploymentHistory } from "../store/deployment-history.js";
import type { DeploymentStore } from "../store/deployment-store.js";
import type { ServiceHolds } from "../store/service-holds.js";

export interface OperationsDeps {
  swarm: SwarmPort;
  store: DeploymentStore;
  history: DeploymentHistory;
  holds: ServiceHolds;
  deployer: Deployer;
  filter?: ServiceFilter;
  ignoreList: string[];
}

/** Engine trouble is not the client's fault: 503 with the reason, never a 500. */
export async function askSwarm<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof SwarmUnavailableError) throw new AppError("UNAVAILABLE", `the Docker engine is unreachable: ${err.message}`);
    throw err;
  }
}

/** A service the server manages, by name: 404 when swarm has no such service or it is not ours to manage. */
export async function getManagedService(deps: OperationsDeps, name: string): Promise<SwarmService> {
  const service = await askSwarm(() => deps.swarm.findService(name));
  if (!service || service.name !== name) throw new AppError("NOT_FOUND", `no swarm service named ${JSON.stringify(name)}`);
  const reason = exclusionReason(service, deps);
  if (reason === "label_disabled") throw new AppError("UNPROCESSABLE", `${name} is labelled deployer.enable=false; the deployer never touches it`);
  if (reason === "job_service") {
    throw new AppError(
      "UNPROCESSABLE",
      `${name} is a job (replicated-job or global-job): its tasks run to completion, which the deployer does not follow as a rollout; run it again with docker service update`,
    );
  }
  if (reason) throw new AppError("NOT_FOUND", `${name} is not managed by this server (${reason})`);
  return service;
}
