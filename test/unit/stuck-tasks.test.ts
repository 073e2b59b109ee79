import { describe, expect, it } from "vitest";
import { describeStuckTasks } from "../../server/engine/stuck-tasks.js";
import type { SwarmTask } from "../../server/engine/swarm-port.js";

const target = "reg.example:5000/app:live@sha256:" + "b".repeat(64);
const old = "reg.example:5000/app:live@sha256:" + "a".repeat(64);

function task(id: string, nodeId: string | undefined, image: string, state: SwarmTask["state"], desiredState: SwarmTask["desiredState"]): SwarmTask {
  return { id: id.padEnd(25, "0"), serviceId: "svc", nodeId, image, state, desiredState, timestamp: "2026-01-01T00:00:00Z" };
}

describe("describeStuckTasks", () => {
  it("names the tasks a stalled rollout waits on, each with its node, and the one left on a node that stopped answering", () => {
    const text = describeStuckTasks(
      [
        task("newonmanager", "managernode01xyz", target, "running", "running"),
        task("oldonmanager", "managernode01xyz", old, "running", "running"),
        task("newondeadnode", "workernode001xyz", target, "assigned", "shutdown"),
        task("oldondeadnode", "workernode001xyz", old, "running", "shutdown"),
      ],
      target,
    );
    expect(text).toBe(
      "task oldonmanager on node managernode0 still running on the old image; " +
        "task newondeadnod on node workernode00 still assigned though swarm wants it shutdown (its node does not answer?)",
    );
  });

  it("names a new task that has no node yet, and says nothing when every wanted task runs the target", () => {
    expect(describeStuckTasks([task("pending1", undefined, target, "pending", "running")], target)).toBe(
      "task pending10000 on no node yet still pending",
    );
    expect(
      describeStuckTasks([task("fine", "n1", target, "running", "running"), task("gone", "n2", old, "shutdown", "shutdown")], target),
    ).toBeUndefined();
  });
});
