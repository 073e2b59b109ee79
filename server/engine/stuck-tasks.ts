import type { SwarmTask } from "./swarm-port.js";

/** Task states on the way to running. */
const beforeRunning = new Set(["new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting"]);
/** Desired states of a task swarm wants alive (follow-rollout.ts counts progress over them too). */
export const liveDesired = new Set([...beforeRunning, "running"]);

/**
 * The tasks a rollout that did not end is waiting on, each with its node, for
 * the message of a timeout: a task swarm keeps on the old image, one on the
 * new image that has not started, and one swarm has told to stop that never
 * left the node it was given. That last kind is what a node whose engine died
 * leaves behind: its manager cannot reach it, so the task stays as the node
 * last reported it, and the update waits for it.
 */
export function describeStuckTasks(tasks: readonly SwarmTask[], targetImage: string): string | undefined {
  const node = (t: SwarmTask) => (t.nodeId ? `on node ${t.nodeId.slice(0, 12)}` : "on no node yet");
  const parts: string[] = [];
  for (const t of tasks) {
    const id = `task ${t.id.slice(0, 12)} ${node(t)}`;
    if (liveDesired.has(t.desiredState) && t.image !== targetImage) parts.push(`${id} still ${t.state} on the old image`);
    else if (liveDesired.has(t.desiredState) && t.state !== "running") parts.push(`${id} still ${t.state}`);
    else if (t.image === targetImage && beforeRunning.has(t.state)) {
      parts.push(`${id} still ${t.state} though swarm wants it ${t.desiredState} (its node does not answer?)`);
    }
  }
  return parts.length ? parts.join("; ") : undefined;
}
