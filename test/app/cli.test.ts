import Database from "better-sqlite3";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import type { Scope } from "../../server/auth/tokens.js";
import { follow } from "../../server/cli/follow.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { listenOnLoopback, runCli } from "../helpers/cli.js";
import { freePortOnLoopback } from "../helpers/ports.js";
import { tempDir } from "../helpers/temp-dir.js";
import { createTestServer, pushAcmeWeb, sha, waitForFinal, type TestServer } from "../helpers/test-server.js";

const image = "127.0.0.1:5000/acme/web";

async function cliEnv(server: TestServer, scopes: Scope[] = ["deployments:read", "deployments:write"]) {
  const { url } = await listenOnLoopback(server);
  const token = await server.tokens.signApiToken({ sub: "ops-alice", scopes });
  return { url, token, env: { DEPLOYER_URL: url, DEPLOYER_TOKEN: token } };
}

function webService(server: TestServer, failureAction?: "rollback") {
  server.swarm.addService({ name: "web", image: `${image}:live`, replicas: 2, failureAction });
}

/**
 * A manual deploy of `tag` on a server whose clock stands still (so the rollout waits), listening on the loopback,
 * and `deployer follow --json` of it writing into `text()`; `ids()` are the ids of the lines written so far.
 */
async function followingADeploy(tag: string, n: number, extra: { maxStreamsPerToken?: number } = {}) {
  const clock = new FakeClock(); // nothing moves until the test advances it
  const server = createTestServer({}, { clock, ...(extra.maxStreamsPerToken ? { events: { maxStreamsPerToken: extra.maxStreamsPerToken } } : {}) });
  webService(server);
  server.registry.push({ registry: "127.0.0.1:5000", repository: "acme/web", tag }, sha(n));
  const listening = await listenOnLoopback(server);
  const target = { url: listening.url, token: await server.tokens.signApiToken({ sub: "ops", scopes: ["deployments:read", "deployments:write"] }) };
  const deploy = async () => {
    const res = await fetch(`${target.url}/api/services/web/deploy`, {
      method: "POST",
      headers: { authorization: `Bearer ${target.token}`, "content-type": "application/json" },
      body: JSON.stringify({ tag }),
    });
    return ((await res.json()) as { deployment: { id: string } }).deployment.id;
  };
  let text = "";
  const out = new Writable({
    write(chunk, _enc, done) {
      text += chunk;
      done();
    },
  });
  const start = (id: string) => follow({ target, id, json: true, out, retryMs: 20 });
  /** Lets the rollout go on, until `done` settles. */
  const ticking = async <T>(done: Promise<T>) => {
    const timer = setInterval(() => clock.advance(10), 5);
    try {
      return await done;
    } finally {
      clearInterval(timer);
    }
  };
  const lines = () =>
    text
      .trimEnd()
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as { id: string; event: string });
  return { server, listening, target, deploy, start, ticking, lines, text: () => text };
}

describe("deployer (the CLI) against a real HTTP server", () => {
  it("deploy --tag --follow prints the rollout line by line and exits 0 when it succeeds; services, history and show read it back", async () => {
    const server = createTestServer();
    webService(server);
    server.registry.push({ registry: "127.0.0.1:5000", repository: "acme/web", tag: "v2" }, sha(2));
    const { env, token } = await cliEnv(server);

    const run = await runCli(["deploy", "web", "--tag", "v2", "--follow"], env);
    expect(run.code, run.stderr).toBe(0);
    const id = /dep_[0-9a-z]{26}/.exec(run.stdout)![0];
    expect(run.stdout).toContain("2/2 tasks running the new image");
    expect(run.stdout.trimEnd().split("\n").at(-1)).toBe(`${id} succeeded`);
    expect(server.store.getDeployment(id).status).toBe("succeeded");

    const services = await runCli(["services", "--json"], env);
    expect(services.code, services.stderr).toBe(0);
    expect(JSON.parse(services.stdout).items[0]).toMatchObject({ name: "web", digest: sha(2), lastDeployment: { id, status: "succeeded" } });
    const history = await runCli(["history", "--service", "web", "--trigger", "manual", "--limit", "5", "--json"], env);
    expect(JSON.parse(history.stdout).items.map((d: { id: string }) => d.id)).toEqual([id]);
    const show = await runCli(["show", id], env);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/^id\s+dep_/);
    expect(show.stdout).toContain("timeline");
    for (const r of [run, services, history, show]) expect(r.stdout + r.stderr).not.toContain(token);
  });

  it("deploy --follow --json exits 1 on an image swarm rolled back, every line JSON, the last one the final event", async () => {
    const server = createTestServer();
    webService(server, "rollback");
    server.registry.push({ registry: "127.0.0.1:5000", repository: "acme/web", tag: "bad" }, sha(9));
    server.swarm.failImage(`${image}:bad@${sha(9)}`);
    const { env } = await cliEnv(server);

    const run = await runCli(["deploy", "web", "--tag", "bad", "--follow", "--json"], env);
    expect(run.code, run.stderr).toBe(1);
    const lines = run.stdout
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines[0].deployment).toMatchObject({ service: "web", trigger: "manual" });
    expect(lines[1]).toMatchObject({ event: "deployment", deploymentId: lines[0].deployment.id });
    expect(lines.at(-1)).toMatchObject({ event: "final", status: "rolled_back" });

    const rollback = await runCli(["rollback", "web", "--follow"], env);
    // Nothing earlier succeeded on this service: the API's 422, as one line, exit 3.
    expect(rollback.code).toBe(3);
    expect(rollback.stderr).toMatch(/^deployer: 422 UNPROCESSABLE: .+\n$/);
  });

  it("approve --follow deploys a deployment awaiting approval and exits 0; reject ends one rejected; neither twice (exit 3)", async () => {
    const server = createTestServer();
    server.swarm.addService({ name: "web", image: `${image}:live`, replicas: 2, labels: { "deployer.approve": "required" } });
    const { env } = await cliEnv(server);
    const waiting = async (n: number) => {
      server.registry.push({ registry: "127.0.0.1:5000", repository: "acme/web", tag: "live" }, sha(n));
      const id = (await pushAcmeWeb(server, "live", sha(n))).deployments[0]!.id;
      await expect.poll(() => server.store.getDeployment(id).status).toBe("awaiting_approval");
      return id;
    };

    const first = await waiting(1);
    const approved = await runCli(["approve", first, "--follow"], env);
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout.trimEnd().split("\n").at(-1)).toBe(`${first} succeeded`);
    expect(server.store.getDeployment(first)).toMatchObject({ status: "succeeded", approvedBy: "ops-alice" });
    const again = await runCli(["approve", first], env);
    expect([again.code, again.stderr]).toEqual([3, expect.stringContaining("is succeeded, not awaiting_approval")]);

    const second = await waiting(2);
    const rejected = await runCli(["reject", second, "--json"], env);
    expect(rejected.code, rejected.stderr).toBe(0);
    expect(JSON.parse(rejected.stdout).deployment).toMatchObject({ id: second, status: "rejected" });
    expect((await server.swarm.findService("web"))?.image).toBe(`${image}:live@${sha(1)}`);
  });

  it("names the URL it cannot reach (exit 2), and says what a 401 or a 403 means (exit 3), never printing the token", async () => {
    const server = createTestServer();
    webService(server);
    const { url, token } = await cliEnv(server, ["deployments:read"]);

    const nobody = `http://127.0.0.1:${await freePortOnLoopback()}`;
    const refused = await runCli(["services"], { DEPLOYER_URL: nobody, DEPLOYER_TOKEN: token });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(`deployer: cannot reach the deployer at ${nobody}: ECONNREFUSED\n`);

    const forged = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLW9mLW5vYm9keQ";
    const bad = await runCli(["services", "--url", url, "--token", forged]);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/^deployer: 401 UNAUTHORIZED: .*check DEPLOYER_TOKEN/);

    const readOnly = await runCli(["resume", "web"], { DEPLOYER_URL: url, DEPLOYER_TOKEN: token });
    expect(readOnly.code).toBe(3);
    expect(readOnly.stderr).toContain("403 FORBIDDEN: this token lacks the deployments:write scope");

    const usage = await runCli(["deploy", "web"], { DEPLOYER_URL: url, DEPLOYER_TOKEN: token });
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("exactly one of --tag or --digest");
    for (const r of [refused, bad, readOnly, usage]) {
      expect(r.stdout + r.stderr).not.toContain(token);
      expect(r.stdout + r.stderr).not.toContain(forged);
    }
  });

  it("shows text from the engine with its control characters escaped, so a task's error cannot drive the terminal or fake a line", async () => {
    const server = createTestServer();
    webService(server, "rollback");
    server.registry.push({ registry: "127.0.0.1:5000", repository: "acme/web", tag: "bad" }, sha(8));
    // A task's error is the engine's text, and what the image printed can reach it.
    server.swarm.failImage(
      `${image}:bad@${sha(8)}`,
      "exit 1\u001b[2J\u001b]0;owned\u0007\r\n2026-01-01 12:00:00Z  succeeded   all good\u009b31m\u202e",
    );
    const { env } = await cliEnv(server);

    const run = await runCli(["deploy", "web", "--tag", "bad", "--follow"], env);
    expect(run.code, run.stderr).toBe(1);
    const id = /dep_[0-9a-z]{26}/.exec(run.stdout)![0];
    const show = await runCli(["show", id], env);
    const history = await runCli(["history"], env);
    const asJson = await runCli(["show", id, "--json"], env);
    for (const r of [run, show, history, asJson]) {
      expect(r.stdout + r.stderr).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e]/);
    }
    expect(show.stdout).toContain("exit 1\\u001b[2J\\u001b]0;owned\\u0007\\u000d\\u000a2026-01-01 12:00:00Z  succeeded   all good\\u009b31m\\u202e");
    expect(run.stdout.split("\n").filter((l) => l.includes("all good"))).toHaveLength(
      run.stdout.split("\n").filter((l) => l.includes("exit 1")).length,
    );
    expect(JSON.parse(asJson.stdout).message).toContain("exit 1\u001b[2J");
  });

  it("backup FILE writes a consistent copy through the API (database:backup), and --local from the file", async () => {
    const server = createTestServer();
    webService(server);
    const { url, token } = await cliEnv(server, ["database:backup"]);
    const dir = tempDir();

    const viaApi = await runCli(["backup", join(dir, "api.db"), "--json"], { DEPLOYER_URL: url, DEPLOYER_TOKEN: token });
    expect(viaApi.code, viaApi.stderr).toBe(0);
    expect(JSON.parse(viaApi.stdout)).toMatchObject({ file: join(dir, "api.db"), via: "api", bytes: expect.any(Number) });
    const local = await runCli(["backup", join(dir, "local.db"), "--local"], { DEPLOYER_DB: server.dbPath });
    expect(local.code, local.stderr).toBe(0);
    for (const file of ["api.db", "local.db"]) {
      const copy = new Database(join(dir, file), { readonly: true });
      expect(copy.pragma("integrity_check", { simple: true })).toBe("ok");
      expect(copy.prepare("select count(*) as n from sources").get()).toEqual({ n: 0 });
      copy.close();
    }
    const again = await runCli(["backup", join(dir, "api.db")], { DEPLOYER_URL: url, DEPLOYER_TOKEN: token });
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("exists; pass --force");
    expect(existsSync(join(dir, "api.db.partial"))).toBe(false);
  });

  it("follow reconnects with Last-Event-ID when the server goes away mid-rollout: no entry missed or shown twice", async () => {
    const f = await followingADeploy("v3", 3);
    const id = await f.deploy();
    const followed = f.start(id);
    await expect.poll(() => f.lines().length).toBeGreaterThan(1);
    await f.listening.close(); // the connection drops; the CLI tries again
    await listenOnLoopback(f.server, f.listening.port);
    await f.ticking(waitForFinal(f.server, id));
    expect(await followed).toBe("succeeded");
    const recorded = f.server.store.feed.readAfter(0, { deploymentId: id, limit: 1000 });
    const upToFinal = recorded.slice(0, recorded.findIndex((e) => e.kind === "final") + 1);
    expect(f.lines().map((l) => l.id)).toEqual(upToFinal.map((e) => String(e.id)));
  });

  it("follow starts over from the first entry when the server no longer has the id it read last (a restored backup)", async () => {
    const f = await followingADeploy("v6", 6);
    const id = await f.deploy();
    const followed = f.start(id);
    await expect.poll(() => f.lines().length).toBeGreaterThan(1);
    await f.listening.close();
    // The record goes back to an older state: the entries the CLI read last are not in it.
    const seenIds = f.lines().map((l) => Number(l.id));
    const keep = 2;
    f.server.database.sqlite.prepare("delete from deployment_events where id > ?").run(keep);
    f.server.database.sqlite.prepare("update sqlite_sequence set seq = ? where name = 'deployment_events'").run(keep);
    expect(Math.max(...seenIds)).toBeGreaterThan(keep + 2);
    await listenOnLoopback(f.server, f.listening.port);
    expect(await f.ticking(followed)).toBe("succeeded");
    const lines = f.lines();
    expect(lines.at(-1)!.event).toBe("final");
    expect(
      lines.filter((l) => l.id === String(seenIds[0])),
      "the first entry again, from the start",
    ).toHaveLength(2);
  });

  it("follow waits for a place when its token holds every event stream it may (429), then follows to the end", async () => {
    const f = await followingADeploy("v5", 5, { maxStreamsPerToken: 1 });
    const held = await fetch(`${f.target.url}/api/events`, { headers: { authorization: `Bearer ${f.target.token}` } });
    expect(held.status).toBe(200);
    const followed = f.start(await f.deploy());
    const refusals = () => f.server.logLines.filter((l) => l.includes('"status":429')).length;
    await expect.poll(refusals).toBeGreaterThan(0);
    await held.body!.cancel();
    expect(await f.ticking(followed)).toBe("succeeded");
  });

  it("follow on a terminal draws a progress bar of the tasks on the new digest, the timeline above it", async () => {
    const server = createTestServer();
    webService(server);
    const { url, token } = await cliEnv(server);
    server.registry.push({ registry: "127.0.0.1:5000", repository: "acme/web", tag: "v4" }, sha(4));
    const deployed = await fetch(`${url}/api/services/web/deploy`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ tag: "v4" }),
    });
    const id = ((await deployed.json()) as { deployment: { id: string } }).deployment.id;
    let text = "";
    const tty = Object.assign(
      new Writable({
        write(chunk, _enc, done) {
          text += chunk;
          done();
        },
      }),
      { isTTY: true, columns: 120, cursorTo: () => true, moveCursor: () => true, clearLine: () => true, clearScreenDown: () => true },
    );
    expect(await follow({ target: { url, token }, id, json: false, out: tty })).toBe("succeeded");
    expect(text).toMatch(/web \[[█░]+\] 2\/2 tasks on the new digest \| succeeded/);
    expect(text).toContain("started; resolving");
    expect(text).toContain("rollout completed: 2/2 tasks running the new image");
  });
});
