import type { DeploymentEventRecord, DeploymentRecord, DeploymentStore } from "../store/deployment-store.js";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const isoAlways = (ms: number) => new Date(ms).toISOString();

/** The contract's Deployment object. */
export function toDeploymentJson(d: DeploymentRecord) {
  return {
    id: d.id,
    service: d.service,
    serviceId: d.serviceId,
    image: d.image,
    digest: d.digest,
    previousImage: d.previousImage,
    trigger: d.trigger,
    status: d.status,
    message: d.message,
    requestedBy: d.requestedBy,
    createdAt: isoAlways(d.createdAt),
    startedAt: iso(d.startedAt),
    finishedAt: iso(d.finishedAt),
    waitUntil: iso(d.waitUntil),
    approvedBy: d.approvedBy,
    approvedAt: iso(d.approvedAt),
  };
}

export function toEventJson(e: DeploymentEventRecord) {
  return { at: isoAlways(e.at), status: e.status, message: e.message };
}

export const deploymentUrl = (id: string) => `/api/deployments/${id}`;

/** How many pushes were coalesced into a deployment, and the latest of them. */
export function coalescedJson(store: Pick<DeploymentStore, "coalescedInto">, id: string) {
  const { count, latest } = store.coalescedInto(id, 20);
  return { count, latest: latest.map((c) => ({ triggerId: c.triggerId, trigger: c.kind, at: isoAlways(c.at) })) };
}
