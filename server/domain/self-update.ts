/**
 * Self-update: the deploy server's own service, labelled `deployer.self=true`
 * (docs/multi-node.md), is deployed like any other, but the update stops the
 * process that sent it. The next process finds the deployment in its record
 * (`running`, its update sent) and follows the rollout to its end, so the
 * spec must let exactly that happen, and let swarm bring the old server back
 * when the new one does not start.
 */
export const SELF_LABEL = "deployer.self";

export interface SelfUpdateSpec {
  labels: Record<string, string>;
  replicas?: number;
  mode: "replicated" | "global";
  failureAction: "pause" | "continue" | "rollback";
  order?: "stop-first" | "start-first";
}

export function isSelf(service: Pick<SelfUpdateSpec, "labels">): boolean {
  return service.labels[SELF_LABEL] === "true";
}

/** Why the deploy server's own service must not be updated as it is; undefined when it may. */
export function selfUpdateRefusal(service: SelfUpdateSpec): string | undefined {
  const wrong: string[] = [];
  // One process writes the SQLite file: a second replica, or a new task started before the old one stops, would be another.
  if (service.mode !== "replicated" || service.replicas !== 1) wrong.push("exactly one replica");
  if (service.order === "start-first") wrong.push("update_config.order stop-first");
  // Without it a new server that does not start leaves the swarm with no deploy server until someone redeploys by hand.
  if (service.failureAction !== "rollback") wrong.push("update_config.failure_action rollback");
  if (wrong.length === 0) return undefined;
  return `the deploy server's own service (${SELF_LABEL}=true) is not updated without ${wrong.join(", ")}`;
}
