import { describe, expect, it } from "vitest";
import { TRANSITIONS, canTransition, deploymentStatuses, isTerminal } from "../../server/domain/deployment.js";
import { TransitionRefusedError } from "../../server/store/deployment-store.js";
import { countRows, createTestServer } from "../helpers/test-server.js";

function recordOne(server: ReturnType<typeof createTestServer>) {
  const recorded = server.store.recordTrigger(
    { kind: "manual", eventKey: crypto.randomUUID(), imageKey: "docker.io/acme/web:v1", requestedBy: "test" },
    [
      {
        service: "web",
        serviceId: "id-web",
        image: "acme/web:v1",
        imageKey: "docker.io/acme/web:v1",
        trigger: "manual",
        requestedBy: "test",
        message: "queued",
      },
    ],
  );
  if (recorded.duplicate) throw new Error("collided");
  return recorded.deployments[0]!.id;
}

describe("the deployment status machine", () => {
  it("has a successor for every status that is not final, and none for the final ones", () => {
    for (const status of deploymentStatuses) {
      expect(isTerminal(status), status).toBe(TRANSITIONS[status].length === 0);
      for (const next of TRANSITIONS[status]) expect(deploymentStatuses).toContain(next);
    }
    expect(deploymentStatuses.filter(isTerminal)).toEqual(["succeeded", "failed", "rolled_back", "skipped", "superseded", "rejected"]);
    expect(canTransition("queued", "succeeded")).toBe(false);
    expect(canTransition("running", "running")).toBe(true);
    expect(canTransition("failed", "failed")).toBe(false);
  });

  it("is enforced by the store: a refused transition throws and writes nothing", () => {
    const server = createTestServer();
    const id = recordOne(server);
    expect(() => server.store.transition(id, { status: "succeeded" }, "skips running")).toThrow(TransitionRefusedError);
    server.store.transition(id, { status: "running" }, "started");
    server.store.transition(id, { status: "succeeded", finishedAt: Date.now() }, "done");
    const events = countRows(server, "deployment_events");
    for (const status of deploymentStatuses) {
      expect(() => server.store.transition(id, { status }, "after the end"), status).toThrow(TransitionRefusedError);
    }
    expect(() => server.store.transition(id, { digest: `sha256:${"1".repeat(64)}` }, "patch after the end")).toThrow(TransitionRefusedError);
    expect(server.store.getDeployment(id)).toMatchObject({ status: "succeeded", digest: null });
    expect(countRows(server, "deployment_events")).toBe(events);
  });
});
