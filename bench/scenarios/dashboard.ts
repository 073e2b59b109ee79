import { join } from "node:path";
import Database from "better-sqlite3";
import { startDeployerChild, startProbeClient, type Child } from "../lib/children.js";
import type { Row, Scenario } from "../lib/scenario.js";
import { round, summarize, type Summary } from "../lib/stats.js";
import type { ProbeRequest } from "../servers/probe-client.js";
import { seedHistory } from "./history-seed.js";

/** Each dashboard page beside the JSON route that reads the same data: the same-run baseline. */
const pairs = {
  services: { page: "/", api: "/api/services" },
  history: { page: "/history", api: "/api/deployments?limit=50" },
  historyByService: { page: "/history?service=SERVICE", api: "/api/deployments?limit=50&service=SERVICE" },
  deployment: { page: "/deployments/ID", api: "/api/deployments/ID" },
} as const;
type Pair = keyof typeof pairs;
const names = Object.keys(pairs) as Pair[];

/** Signs in as a browser would (a form post from the server's own origin) and returns the session cookie. */
async function signIn(child: Child, token: string): Promise<string> {
  const res = await fetch(`${child.url}/sign-in`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", origin: child.url },
    body: new URLSearchParams({ token }).toString(),
  });
  const cookie = /deployer_session=[^;]+/.exec(res.headers.get("set-cookie") ?? "")?.[0];
  if (res.status !== 303 || !cookie) throw new Error(`dashboard sign-in answered ${res.status}`);
  return cookie;
}

/**
 * The dashboard's pages rendered by the server (hono/jsx): the services page
 * over 200 services (the fake swarm's, each with its history) and the history
 * and deployment pages over a million deployments. The figure is the server's
 * own time (app.fetch to its Response, body included), beside the JSON API's
 * route for the same data, in the same server and run: what rendering HTML
 * adds. Target: p99 under 100 ms.
 */
export const dashboard: Scenario = {
  key: "dashboard",
  title: "8. dashboard pages",
  async run(ctx) {
    const rows = ctx.quick ? 100_000 : 1_000_000;
    const seeded = seedHistory(join(ctx.tmp, "dashboard.db"), { rows, services: 200, eventsPerDeployment: 6 });
    ctx.log(`dashboard: seeded ${rows} deployments over ${seeded.services.length} services in ${Math.round(seeded.seedMs)} ms`);
    const db = new Database(seeded.path, { readonly: true, fileMustExist: true });
    const ids = (db.prepare("select id from deployments order by rowid desc limit 200").all() as Array<{ id: string }>).map((r) => r.id);
    db.close();

    const services = seeded.services.map((name) => ({ name, image: `127.0.0.1:5000/shop/${name}:live`, replicas: 2 }));
    const server = await startDeployerChild(ctx.cleanup, { dbPath: seeded.path, secret: ctx.secret, services, probes: true });
    const client = await startProbeClient(ctx.cleanup);
    const token = await ctx.tokens.signApiToken({ sub: "bench", scopes: ["deployments:read", "deployments:write"] });
    const cookie = await signIn(server, token);

    let n = 0;
    const fill = (path: string) => path.replace("SERVICE", seeded.services[(n * 7) % seeded.services.length]!).replace("ID", ids[n % ids.length]!);
    const request = (pair: Pair, side: "page" | "api"): ProbeRequest => ({
      url: `${server.url}${fill(pairs[pair][side])}`,
      headers: side === "page" ? { cookie, "x-bench-probe": `${pair}:page` } : { authorization: `Bearer ${token}`, "x-bench-probe": `${pair}:api` },
    });
    const round_ = () => names.flatMap((p) => (n++, [request(p, "page"), request(p, "api")]));

    const warmup = Array.from({ length: 20 }, round_).flat();
    await client.rpc("timeGets", { requests: warmup }, 120_000);
    await server.rpc("reset");
    const samples = ctx.quick ? 50 : 200;
    const timed = Array.from({ length: samples }, round_).flat();
    const wall = await client.rpc<number[]>("timeGets", { requests: timed }, 600_000);

    const stats = await server.rpc<{ arrivals: Array<{ probe: string; handledMs?: number }> }>("stats");
    const handled: Record<string, number[]> = {};
    for (const a of stats.arrivals) if (a.handledMs !== undefined) (handled[a.probe] ??= []).push(a.handledMs);
    const wallBy: Record<string, number[]> = {};
    timed.forEach((r, i) => (wallBy[r.headers["x-bench-probe"]!] ??= []).push(wall[i]!));
    const sum = (key: string): Summary => summarize(handled[key] ?? []);

    const out: Row[] = [];
    for (const p of names) {
      const page = sum(`${p}:page`);
      const api = sum(`${p}:api`);
      out.push({
        metric: `${p} page, server time`,
        unit: "ms",
        value: page,
        baseline: { label: "JSON API p99", value: api.p99 },
        ratio: page.p99 / api.p99,
        target: "p99 < 100",
        ok: page.p99 < 100,
      });
    }
    const by = (f: (p: Pair) => number) => Object.fromEntries(names.map((p) => [p, round(f(p))]));
    return {
      json: {
        rows,
        services: seeded.services.length,
        samplesPerPage: samples,
        serverP99Ms: by((p) => sum(`${p}:page`).p99),
        serverP50Ms: by((p) => sum(`${p}:page`).median),
        baselineApiServerP99Ms: by((p) => sum(`${p}:api`).p99),
        baselineApiServerP50Ms: by((p) => sum(`${p}:api`).median),
        wallP99Ms: by((p) => summarize(wallBy[`${p}:page`] ?? []).p99),
        baselineApiWallP99Ms: by((p) => summarize(wallBy[`${p}:api`] ?? []).p99),
        seedMs: Math.round(seeded.seedMs),
      },
      rows: out,
    };
  },
};
