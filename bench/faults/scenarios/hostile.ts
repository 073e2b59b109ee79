import { createHmac } from "node:crypto";
import { createTokenService } from "../../../server/auth/tokens.js";
import { skipped, type BenchContext, type Row, type Scenario } from "../../lib/scenario.js";
import { round, roundSummary, summarize } from "../../lib/stats.js";
import { hostileCase, pickCategory, seeded, type Category, type HostileKit } from "../lib/hostile-cases.js";
import { watchLoop } from "../lib/loop-probe.js";
import { isEnvelope, rawRequest, type RawAnswer } from "../lib/raw-http.js";
import { buildWorld, dockerHelpersOrReason, readDb, serverEnv, startServer, timeGet } from "../lib/world.js";

/** An HS256 JWT built by hand, so that a test can forge what the server's own signer refuses to make. */
function forge(secret: string, header: Record<string, unknown>, payload: Record<string, unknown>): string {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const signing = `${part(header)}.${part(payload)}`;
  return `${signing}.${createHmac("sha256", secret).update(signing).digest("base64url")}`;
}

async function kitFor(ctx: BenchContext, repository: string, webhook: string, digest: string): Promise<HostileKit> {
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: "intruder", repos: [repository], aud: "deployer:webhook", iat: now };
  const other = createTokenService({ secret: "another-key-that-is-long-enough-for-hs256-0123456789", dockerHubRegistry: "docker.io" });
  return {
    webhook,
    apiRead: await ctx.tokens.signApiToken({ sub: "reader", scopes: ["deployments:read"] }),
    apiWrite: await ctx.tokens.signApiToken({ sub: "writer", scopes: ["deployments:read", "deployments:write"] }),
    forged: [
      await other.signWebhookToken({ sub: "intruder", repos: [repository] }),
      await other.signApiToken({ sub: "intruder", scopes: ["deployments:write"] }),
      forge(ctx.secret, { alg: "HS256", typ: "JWT" }, { ...claims, exp: now - 60 }),
      forge(ctx.secret, { alg: "HS256", typ: "JWT" }, { ...claims, aud: "someone-else" }),
      forge(ctx.secret, { alg: "HS512", typ: "JWT" }, claims),
      `${Buffer.from(JSON.stringify({ alg: "none" })).toString("base64url")}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.`,
    ],
    repository,
    digest,
  };
}

interface Tally {
  answers: number;
  byClass: Record<string, number>;
  fiveXx: number;
  outsideEnvelope: number;
  noAnswer: number;
  ms: number[];
  examples: string[];
  /** What was accepted (2xx), by label, to read whether each acceptance is right. */
  accepted: Record<string, number>;
}

const emptyTally = (): Tally => ({ answers: 0, byClass: {}, fiveXx: 0, outsideEnvelope: 0, noAnswer: 0, ms: [], examples: [], accepted: {} });

function count(t: Tally, c: { label: string; category: Category }, a: RawAnswer): void {
  t.answers++;
  const klass = a.status === 0 ? `none (${a.failure})` : `${Math.floor(a.status / 100)}xx`;
  t.byClass[klass] = (t.byClass[klass] ?? 0) + 1;
  if (a.status === 0) t.noAnswer++;
  // A slow client's answer takes as long as it takes to send: not the server's time.
  else if (c.category !== "slow-client") t.ms.push(a.ms);
  if (a.status >= 200 && a.status < 300) {
    const key = c.label.replace(/\d{2,}/g, "N").slice(0, 80);
    t.accepted[key] = (t.accepted[key] ?? 0) + 1;
  }
  const bad = a.status >= 500 || (a.status >= 400 && !isEnvelope(a));
  if (a.status >= 500) t.fiveXx++;
  if (a.status >= 400 && !isEnvelope(a)) t.outsideEnvelope++;
  if (bad && t.examples.length < 10) t.examples.push(`${a.status} ${c.label}: ${a.body.slice(0, 120)}`);
}

/**
 * A seeded run of hostile requests (every category of issue 10) against the
 * server on the real swarm, with the poller off, a real service in reach of
 * the webhook token and healthy clients probing /healthz meanwhile.
 */
export const hostile: Scenario = {
  key: "hostile",
  title: "1. hostile input",
  async run(ctx) {
    const h = await dockerHelpersOrReason();
    if (typeof h === "string") return skipped(`needs Docker in swarm mode and docker-registry: ${h}`);
    // No notifications: every push in this run is one the scenario sends itself.
    const world = await buildWorld(ctx, h, { name: "fault-hostile", notify: false });
    const server = await startServer(ctx, world, serverEnv(ctx, world));
    const seed = Number(process.env.FAULTS_SEED ?? 20261201);
    const total = ctx.quick ? 1000 : 10_000;
    const rng = seeded(seed);
    const kit = await kitFor(ctx, world.repository, world.webhookToken, world.digestOfVariant(7));
    const before = readDb(world.dbPath, world.service);

    const loop = watchLoop(server.url, () => server.child.exitCode === null && server.child.signalCode === null);
    const all = emptyTally();
    const byCategory = new Map<Category, Tally>();
    const healthMs: number[] = [];
    let probing = true;
    const probe = (async () => {
      while (probing) {
        const r = await timeGet(`${server.url}/healthz`, 5000);
        if (r.status === 200) healthMs.push(r.ms);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    let sent = 0;
    const worker = async () => {
      while (sent < total) {
        const i = sent++;
        const c = hostileCase(pickCategory(rng), rng, kit);
        const answer = await rawRequest(world.serverPort, c, 15_000);
        count(all, c, answer);
        const t = byCategory.get(c.category) ?? emptyTally();
        byCategory.set(c.category, t);
        count(t, c, answer);
        if (i > 0 && i % 1000 === 0) process.stderr.write(`  hostile: ${i}/${total} sent\n`);
      }
    };
    const startedAt = performance.now();
    await Promise.all(Array.from({ length: 8 }, worker));
    const seconds = (performance.now() - startedAt) / 1000;
    probing = false;
    await probe;
    const stall = await loop.stop();
    const alive = server.child.exitCode === null && server.child.signalCode === null;
    const healthAfter = alive ? (await timeGet(`${server.url}/healthz`)).status : 0;
    const after = readDb(world.dbPath, world.service);
    const secretsInLog = [ctx.secret, kit.apiWrite, kit.webhook].some((s) => server.stdout().includes(s) || server.stderr().includes(s));

    const latency = summarize(all.ms);
    const health = summarize(healthMs);
    const deploymentsWritten = after.deployments - before.deployments;
    const json = {
      seed,
      requests: all.answers,
      seconds: round(seconds),
      statusesByClass: all.byClass,
      fiveXx: all.fiveXx,
      outsideEnvelope: all.outsideEnvelope,
      noAnswer: all.noAnswer,
      deploymentsWritten,
      triggersWritten: after.triggers - before.triggers,
      latencyMs: roundSummary(latency),
      healthzDuringRunMs: roundSummary(health),
      longestLoopStallMs: round(stall.longestStallMs),
      crashed: !alive || stall.died,
      healthzAfter: healthAfter,
      secretsInLog,
      categories: Object.fromEntries(
        [...byCategory].map(([k, t]) => [
          k,
          { n: t.answers, byClass: t.byClass, fiveXx: t.fiveXx, outsideEnvelope: t.outsideEnvelope, p99Ms: round(summarize(t.ms).p99) },
        ]),
      ),
      examples: all.examples,
      accepted: all.accepted,
    };
    const rows: Row[] = [
      { metric: "requests answered", unit: "", value: summarize([all.answers - all.noAnswer]), target: `${total} sent` },
      { metric: "crashes", unit: "", value: summarize([json.crashed ? 1 : 0]), target: "0", ok: !json.crashed && healthAfter === 200 },
      { metric: "5xx", unit: "", value: summarize([all.fiveXx]), target: "0", ok: all.fiveXx === 0 },
      { metric: "answers outside the envelope", unit: "", value: summarize([all.outsideEnvelope]), target: "0", ok: all.outsideEnvelope === 0 },
      { metric: "deployments written", unit: "", value: summarize([deploymentsWritten]), target: "0", ok: deploymentsWritten === 0 },
      { metric: "answer time (slow clients apart)", unit: "ms", value: latency },
      { metric: "/healthz meanwhile", unit: "ms", value: health },
      { metric: "longest loop stall", unit: "ms", value: summarize([stall.longestStallMs]), target: "< 50", ok: stall.longestStallMs < 50 },
      { metric: "secrets in the log", unit: "", value: summarize([secretsInLog ? 1 : 0]), target: "0", ok: !secretsInLog },
    ];
    return { json, rows, notes: all.examples.length ? [`first bad answers: ${all.examples.slice(0, 3).join(" | ")}`] : [] };
  },
};
