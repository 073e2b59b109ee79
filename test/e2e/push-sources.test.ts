/**
 * Push sources on the real swarm: a build is pushed to a real docker-registry
 * (one that sends no notifications of its own), and the sender announces it
 * as GitHub, Harbor or a CI job would: a source created through the API, its
 * secret as the proof (GitHub's HMAC of the raw body, Harbor's auth header),
 * or a webhook token for `POST /hooks/ci`. The server, running as its own
 * process, rolls the service running that tag to the digest the registry now
 * holds for it.
 *
 * The server, the registry and the builds are shared; each test has its own
 * repository, service and source, and can run alone (`-t`).
 */
import { createHmac, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeDocker, freePort, uniqueName, waitFor } from "../helpers/docker-env.js";
import { createE2eEnvironment, type E2eEnvironment } from "../helpers/e2e-env.js";
import { registryDigest } from "../helpers/pipeline.js";

const FIXTURES = new URL("../fixtures/webhooks/", import.meta.url);
// Fixtures are edited below, so they are untyped.
const fixture = (name: string): any => JSON.parse(readFileSync(new URL(name, FIXTURES), "utf8"));

describeDocker(
  "push sources on a real swarm",
  () => {
    let env: E2eEnvironment;
    let registry: string;

    beforeAll(async () => {
      // The registry without notifications is a plain registry here, not Docker Hub's stand-in.
      env = await createE2eEnvironment({ builds: { v1: {}, v2: {} }, serverEnv: { DEPLOYER_DOCKERHUB_REGISTRY: "docker.io" } });
      registry = env.hub.host;
    });

    afterAll(async () => {
      await env?.close();
    });

    /** A service of its own running `<registry>/src/<name>:live` on v1, and v2 pushed to that tag (not yet announced). */
    async function pushedOverRunningService(prefix: string) {
      const name = uniqueName(prefix);
      const repository = `src/${name}`;
      const image = `${registry}/${repository}:live`;
      await env.publish("v1", image);
      // No health check: this story is the announcement, and the image's one-second probe is what costs here.
      await env.createService(name, image, await freePort(), "v1", { healthcheck: { test: ["NONE"] } });
      const pushed = await env.publish("v2", image);
      return { name, repository, image, pushed };
    }

    async function createSource(kind: "github" | "harbor", repos: string[]) {
      const token = await env.tokens.signApiToken({ sub: "e2e-admin", scopes: ["sources:admin"] });
      const res = await fetch(`${env.server.url}/api/sources`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ kind, repos }),
      });
      const text = await res.text();
      expect(res.status, text).toBe(201);
      return JSON.parse(text) as { source: { id: string; path: string }; secret: string; url: string };
    }

    async function post(url: string, body: string, headers: Record<string, string>) {
      const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
      const text = await res.text();
      return { status: res.status, text, json: JSON.parse(text) as { deployments: Array<{ id: string; service: string }>; ignored: unknown[] } };
    }

    /** The deployment the webhook answered with ends succeeded, and the service runs the digest the registry has for the tag. */
    async function expectRolledTo(
      answer: Awaited<ReturnType<typeof post>>,
      pushed: { name: string; repository: string; image: string; pushed: string },
      trigger: { trigger: string; requestedBy: string },
    ) {
      expect(answer.status, answer.text).toBe(202);
      expect(answer.json.deployments.map((d) => d.service)).toEqual([pushed.name]);
      const record = await env.waitForDeployment(answer.json.deployments[0]!.id, `the ${trigger.trigger} deployment of ${pushed.image}`);
      const current = await registryDigest(registry, pushed.repository, "live");
      expect(current).toBe(pushed.pushed);
      expect(record.status, JSON.stringify(record.events, null, 1)).toBe("succeeded");
      expect(record).toMatchObject({ ...trigger, digest: current });
      expect(await env.serviceImage(pushed.name)).toBe(`${pushed.image}@${current}`);
      const port = (await env.dockerApi.getService(pushed.name).inspect()).Endpoint.Ports[0].PublishedPort as number;
      await waitFor(async () => (await env.answer(port))?.includes("version=v2"), { timeoutMs: 30_000, what: `${pushed.name} answering v2` });
    }

    it("rolls a service to the pushed digest on a signed GitHub package event", async () => {
      const pushed = await pushedOverRunningService("gh");
      const { source, secret, url } = await createSource("github", [`${registry}/src/*`]);
      expect(url).toBe(`${env.server.url}/hooks/github/${source.id}`);

      // GitHub's `package` published event, naming the local registry where it names ghcr.io.
      const event = fixture("ghcr-package-published.json");
      event.package.name = pushed.name;
      event.package.namespace = pushed.repository;
      event.package.owner.login = "src";
      event.package.registry.url = `http://${registry}/src`;
      const version = event.package.package_version;
      version.package_url = pushed.image;
      version.installation_command = `docker pull ${pushed.image}`;
      version.container_metadata.tag = { name: "live", digest: pushed.pushed };
      version.container_metadata.manifest.digest = pushed.pushed;
      const body = JSON.stringify(event);
      const signature = `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;

      const answer = await post(url, body, { "x-github-event": "package", "x-github-delivery": randomUUID(), "x-hub-signature-256": signature });
      await expectRolledTo(answer, pushed, { trigger: "github", requestedBy: `source:${source.id}` });
    });

    it("rolls a service to the pushed digest on a Harbor PUSH_ARTIFACT with the source's auth header", async () => {
      const pushed = await pushedOverRunningService("harbor");
      const { source, secret, url } = await createSource("harbor", [`${registry}/src/*`]);
      expect(url).toBe(`${env.server.url}/hooks/harbor/${source.id}`);

      const event = fixture("harbor-push.json");
      event.occur_at = Math.floor(Date.now() / 1000);
      event.event_data.resources = [{ digest: pushed.pushed, tag: "live", resource_url: pushed.image }];
      event.event_data.repository = { ...event.event_data.repository, name: pushed.name, namespace: "src", repo_full_name: pushed.repository };

      const answer = await post(url, JSON.stringify(event), { authorization: secret });
      await expectRolledTo(answer, pushed, { trigger: "harbor", requestedBy: `source:${source.id}` });
    });

    it("rolls a service to the pushed digest on POST /hooks/ci with a webhook token", async () => {
      const pushed = await pushedOverRunningService("ci");
      const token = await env.tokens.signWebhookToken({ sub: "ci-job", repos: [`${registry}/src/*`] });

      const answer = await post(`${env.server.url}/hooks/ci`, JSON.stringify({ image: pushed.image, digest: pushed.pushed }), {
        authorization: `Bearer ${token}`,
      });
      await expectRolledTo(answer, pushed, { trigger: "ci", requestedBy: "ci-job" });
    });
  },
  { timeout: 180_000 },
);
