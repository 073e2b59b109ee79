import { tryParseImageRef } from "../domain/image-ref.js";
import { readPolicy, type ServicePolicy } from "../domain/policy.js";
import { exclusionReason } from "../domain/service-selection.js";
import type { DeploymentRecord } from "../store/deployment-store.js";
import type { ServiceHold } from "../store/service-holds.js";
import { askSwarm, type OperationsDeps } from "./operations-deps.js";

export interface ManagedService {
  name: string;
  id: string;
  image: string;
  digest: string | null;
  mode: "replicated" | "global";
  replicas: number | null;
  /** Tasks running now, as the engine counted them in its list. */
  runningTasks: number | null;
  held: boolean;
  hold: ServiceHold | null;
  lastDeployment: DeploymentRecord | null;
  /** The policy its labels set, or null when they cannot be read (then `policyErrors` says why, and pushes leave it alone). */
  policy: ServicePolicy | null;
  policyErrors: string[];
}

/** The swarm services the server manages (not disabled, ignorelisted or filtered out), by name. */
export async function listServices(deps: OperationsDeps): Promise<ManagedService[]> {
  const services = await askSwarm(() => deps.swarm.listServices());
  const holds = new Map(deps.holds.all().map((h) => [h.service, h]));
  return services
    .filter((s) => exclusionReason(s, deps) === undefined)
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((s) => ({
      name: s.name,
      id: s.id,
      image: s.image,
      digest: tryParseImageRef(s.image)?.digest ?? null,
      mode: s.mode,
      replicas: s.replicas ?? null,
      runningTasks: s.runningTasks ?? null,
      held: holds.has(s.name),
      hold: holds.get(s.name) ?? null,
      lastDeployment: deps.history.newestOf(s.name) ?? null,
      ...policyOf(s.labels),
    }));
}

function policyOf(labels: Record<string, string>): { policy: ServicePolicy | null; policyErrors: string[] } {
  const read = readPolicy(labels);
  return read.ok ? { policy: read.policy, policyErrors: [] } : { policy: null, policyErrors: read.errors };
}
