import { describe, expect, it } from "vitest";
import { selfUpdateRefusal } from "../../server/domain/self-update.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { createTestServer, pushAcmeWeb, runToFinal, sha } from "../helpers/test-server.js";

const repo = "127.0.0.1:5000/acme/web";
const ref = (tag: string) => ({ registry: "127.0.0.1:5000", repository: "acme/web", tag });

describe("self-update (deployer.self=true)", () => {
  it("updates the deploy server's own service when one stop-first replica rolls back on failure, saying the process will stop", async () => {
    const server = createTestServer({}, { clock: new FakeClock() });
    server.swarm.addService({
      name: "deployer",
      image: `${repo}:v1`,
      labels: { "deployer.self": "true" },
      updatePolicy: { parallelism: 1, failureAction: "rollback", order: "stop-first", monitorMs: 5000 },
    });
    server.registry.push(ref("v1"), sha(2));
    const answer = await pushAcmeWeb(server, "v1", sha(2));
    const dep = await runToFinal(server, answer.deployments[0]!.id);
    expect(dep.status).toBe("succeeded");
    const timeline = server.store.listEvents(dep.id).map((e) => e.message);
    expect(timeline).toContain("this is the deploy server's own service: the update stops this process, and the next one follows the rollout");
    expect((await server.swarm.findService("deployer"))?.image).toBe(`${repo}:v1@${sha(2)}`);
  });

  it("skips the update, touching nothing, when a bad server image would leave no deploy server or two would write the record", async () => {
    const server = createTestServer({}, { clock: new FakeClock() });
    server.swarm.addService({
      name: "deployer",
      image: `${repo}:v1`,
      labels: { "deployer.self": "true" },
      updatePolicy: { parallelism: 1, failureAction: "pause", order: "start-first", monitorMs: 5000 },
    });
    server.registry.push(ref("v1"), sha(2));
    const answer = await pushAcmeWeb(server, "v1", sha(2));
    const dep = await runToFinal(server, answer.deployments[0]!.id);
    expect(dep.status).toBe("skipped");
    expect(dep.message).toBe(
      "the deploy server's own service (deployer.self=true) is not updated without update_config.order stop-first, update_config.failure_action rollback",
    );
    expect(server.swarm.callsOf("updateService")).toEqual([]);
  });
});

describe("selfUpdateRefusal", () => {
  const fine = { labels: {}, mode: "replicated" as const, replicas: 1, failureAction: "rollback" as const, order: "stop-first" as const };
  it("lets one stop-first replica that rolls back through, swarm's default order included", () => {
    expect(selfUpdateRefusal(fine)).toBeUndefined();
    expect(selfUpdateRefusal({ ...fine, order: undefined })).toBeUndefined();
  });
  it("names every missing condition", () => {
    expect(selfUpdateRefusal({ ...fine, replicas: 2, failureAction: "continue" })).toBe(
      "the deploy server's own service (deployer.self=true) is not updated without exactly one replica, update_config.failure_action rollback",
    );
    expect(selfUpdateRefusal({ ...fine, mode: "global", replicas: undefined })).toMatch(/without exactly one replica$/);
  });
});
