export const deploymentStatuses = [
  "queued",
  "running",
  "succeeded",
  "failed",
  "rolled_back",
  "skipped",
  "superseded",
  "cooling_down",
  "scheduled",
  "awaiting_approval",
  "rejected",
] as const;
export type DeploymentStatus = (typeof deploymentStatuses)[number];

/**
 * Then the push sources' kinds (domain/source.ts), the trigger naming the sender, `ci`: a job's own call to
 * /hooks/ci, and `external`: a change of a service's image the server did not make, recorded as it saw it.
 */
export const triggerKinds = [
  "dockerhub",
  "registry",
  "poll",
  "manual",
  "rollback",
  "github",
  "gitea",
  "harbor",
  "quay",
  "ecr",
  "acr",
  "gar",
  "ci",
  "external",
] as const;
export type TriggerKind = (typeof triggerKinds)[number];

/**
 * The status machine, as data: which status may follow which. A status with
 * no successor is final. A deployment may stay in a status that is not final
 * (a patch that only adds a digest or a timeline entry). Adding a status is
 * an entry here plus the code that handles it; the store refuses the rest.
 */
export const TRANSITIONS: Readonly<Record<DeploymentStatus, readonly DeploymentStatus[]>> = {
  // failed: a run that crashed before it started; skipped, superseded: the deployer's queue.
  queued: ["running", "skipped", "superseded", "failed"],
  // queued: requeued after a restart, when the update had not been sent. The waiting statuses: a policy's
  // gate (domain/gates.ts) held it before the update was sent.
  running: ["queued", "succeeded", "failed", "rolled_back", "skipped", "cooling_down", "scheduled", "awaiting_approval"],
  succeeded: [],
  failed: [],
  rolled_back: [],
  skipped: [],
  superseded: [],
  // Waiting for a policy (deployer.min-age, deployer.window, deployer.approve): queued again when the wait
  // is over (or approved), superseded by a newer request for the service, rejected by a person or on expiry.
  cooling_down: ["queued", "superseded", "failed"],
  scheduled: ["queued", "superseded", "failed"],
  awaiting_approval: ["queued", "superseded", "rejected", "failed"],
  rejected: [],
};

/** Statuses a deployment waits in, outside the deployer's queue, for a policy's gate to open. */
export const waitingStatuses: ReadonlySet<DeploymentStatus> = new Set(["cooling_down", "scheduled", "awaiting_approval"]);

export const terminalStatuses: ReadonlySet<DeploymentStatus> = new Set(deploymentStatuses.filter((s) => TRANSITIONS[s].length === 0));

export function isTerminal(status: DeploymentStatus): boolean {
  return terminalStatuses.has(status);
}

/** Whether a deployment in `from` may be patched to `to` (the same status: only while not final). */
export function canTransition(from: DeploymentStatus, to: DeploymentStatus): boolean {
  return from === to ? !isTerminal(from) : TRANSITIONS[from].includes(to);
}

/** Triggers that are a registry announcing a push. */
export const webhookTriggers: readonly TriggerKind[] = ["dockerhub", "registry", "github", "gitea", "harbor", "quay", "ecr", "acr", "gar", "ci"];

/** Triggers nobody chose by hand: they respect holds and the quarantine of a digest that failed. */
export const automaticTriggers: ReadonlySet<TriggerKind> = new Set([...webhookTriggers, "poll"]);
