export const deploymentStatuses = ["queued", "running", "succeeded", "failed", "rolled_back", "skipped", "superseded"] as const;
export type DeploymentStatus = (typeof deploymentStatuses)[number];

export const triggerKinds = ["dockerhub", "registry", "poll", "manual", "rollback"] as const;
export type TriggerKind = (typeof triggerKinds)[number];

export const terminalStatuses: ReadonlySet<DeploymentStatus> = new Set(["succeeded", "failed", "rolled_back", "skipped", "superseded"]);

export function isTerminal(status: DeploymentStatus): boolean {
  return terminalStatuses.has(status);
}
