import { join } from "node:path";
import Database from "better-sqlite3";
import { encodeCursor } from "../../server/http/api/api-routes.js";
import { startDeployerChild, startProbeClient, type Child } from "../lib/children.js";
import type { ProbeRequest } from "../servers/probe-client.js";
import { explainReads } from "../lib/query-plans.js";
import type { Row, Scenario } from "../lib/scenario.js";
import { round, summarize, type Summary } from "../lib/stats.js";
import { seedHistory, type SeededHistory } from "./history-seed.js";

const kinds = ["list", "byService", "byStatus", "deepCursor", "byId", "byServiceAndStatus"] as const;
type Kind = (typeof kinds)[number];
const required: Kind[] = ["list", "byService", "byStatus", "deepCursor", "byId"];
const statuses = ["succeeded", "failed", "rolled_back", "skipped", "superseded"];
const depth = 10_000;

/** What a client would ask for each kind, with parameters drawn afresh per request. */
function createRequests(seeded: SeededHistory) {
  const db = new Database(seeded.path, { readonly: true, fileMustExist: true });
  const maxRowid = (db.prepare("select max(rowid) as n from deployments").get() as { n: number }).n;
  const ids = Array.from(
    { length: 500 },
    (_, i) => (db.prepare("select id from deployments where rowid = ?").get(1 + ((i * 104_729) % maxRowid)) as { id: string }).id,
  );
  const deep = (
    db.prepare("select id from deployments order by id desc limit 1 offset ?").get(Math.min(depth, Math.floor(seeded.rows / 2)) - 1) as { id: string }
  ).id;
  db.close();
  let n = 0;
  const service = () => seeded.services[(n * 7) % seeded.services.length]!;
  const status = () => statuses[n % statuses.length]!;
  const paths: Record<Kind, () => string> = {
    list: () => "/api/deployments?limit=50",
    byService: () => `/api/deployments?limit=50&service=${service()}`,
    byStatus: () => `/api/deployments?limit=50&status=${status()}`,
    deepCursor: () => `/api/deployments?limit=50&cursor=${encodeCursor(deep)}`,
    byId: () => `/api/deployments/${ids[n % ids.length]}`,
    byServiceAndStatus: () => `/api/deployments?limit=50&service=${service()}&status=${status()}`,
  };
  return { next: (kind: Kind) => (n++, paths[kind]()), sampleId: ids[0]!, deep, service: seeded.services[0]! };
}

/** The server's own time per request (deployer-child probes), by kind. */
async function handledByKind(child: Child): Promise<Record<Kind, number[]>> {
  const stats = await child.rpc<{ arrivals: Array<{ probe: string; handledMs?: number }> }>("stats");
  const out = Object.fromEntries(kinds.map((k) => [k, [] as number[]])) as Record<Kind, number[]>;
  for (const a of stats.arrivals) if (a.handledMs !== undefined) out[a.probe as Kind]?.push(a.handledMs);
  return out;
}

/**
 * Scenario 4. A million deployments over 200 services, built by the real
 * migrations and seeded in one transaction; each read timed over HTTP
 * against the real server (auth, validation, query, JSON) one request at a
 * time. Same-run baseline: the same reads against a 1,000-row history.
 */
export const history: Scenario = {
  key: "history",
  title: "4. history at scale",
  async run(ctx) {
    const rows = ctx.quick ? 100_000 : 1_000_000;
    const big = seedHistory(join(ctx.tmp, "history.db"), { rows, services: 200, eventsPerDeployment: 2 });
    ctx.log(`history: seeded ${rows} deployments and ${big.events} events in ${Math.round(big.seedMs)} ms (${round(big.dbMb)} MB)`);
    const small = seedHistory(join(ctx.tmp, "history-small.db"), { rows: 1000, services: 200, eventsPerDeployment: 2 });
    const bigReq = createRequests(big);
    const smallReq = createRequests(small);

    const plans = explainReads(big.path, {
      list: { limit: 50 },
      byService: { limit: 50, service: bigReq.service },
      byStatus: { limit: 50, status: "rolled_back" },
      deepCursor: { limit: 50, beforeId: bigReq.deep },
      byId: { byId: bigReq.sampleId },
      byServiceAndStatus: { limit: 50, service: bigReq.service, status: "rolled_back" },
    });
    if (ctx.verbose) {
      for (const [name, list] of Object.entries(plans)) {
        for (const p of list) process.stderr.write(`  plan ${name}: ${p.sql}\n${p.plan.map((d) => `      ${d}`).join("\n")}\n`);
      }
    }

    const server = await startDeployerChild(ctx.cleanup, { dbPath: big.path, secret: ctx.secret, services: [], probes: true });
    const baseline = await startDeployerChild(ctx.cleanup, { dbPath: small.path, secret: ctx.secret, services: [], probes: true });
    const client = await startProbeClient(ctx.cleanup);
    const token = await ctx.tokens.signApiToken({ sub: "bench", scopes: ["deployments:read"] });
    const probe = (child: Child, path: string, kind: Kind): ProbeRequest => ({
      url: `${child.url}${path}`,
      headers: { authorization: `Bearer ${token}`, "x-bench-probe": kind },
    });
    const samples = ctx.quick ? 100 : 400;
    const ours = Object.fromEntries(kinds.map((k) => [k, [] as number[]])) as Record<Kind, number[]>;
    const base = Object.fromEntries(kinds.map((k) => [k, [] as number[]])) as Record<Kind, number[]>;
    // Warm-up, then the timed reads, interleaved big / small, all sent by the probe client.
    const warmup: ProbeRequest[] = [];
    for (let i = 0; i < 20; i++) for (const k of kinds) warmup.push(probe(server, bigReq.next(k), k), probe(baseline, smallReq.next(k), k));
    await client.rpc("timeGets", { requests: warmup }, 120_000);
    await Promise.all([server.rpc("reset"), baseline.rpc("reset")]);
    const timed: Array<{ kind: Kind; big: boolean; request: ProbeRequest }> = [];
    for (let i = 0; i < samples; i++) {
      for (const k of kinds) {
        timed.push({ kind: k, big: true, request: probe(server, bigReq.next(k), k) });
        timed.push({ kind: k, big: false, request: probe(baseline, smallReq.next(k), k) });
      }
    }
    const times = await client.rpc<number[]>("timeGets", { requests: timed.map((t) => t.request) }, 300_000);
    timed.forEach((t, i) => (t.big ? ours : base)[t.kind].push(times[i]!));

    const handled = await handledByKind(server);
    const handledBase = await handledByKind(baseline);
    const h = Object.fromEntries(kinds.map((k) => [k, summarize(handled[k])])) as Record<Kind, Summary>;
    const hb = Object.fromEntries(kinds.map((k) => [k, summarize(handledBase[k])])) as Record<Kind, Summary>;
    const s = Object.fromEntries(kinds.map((k) => [k, summarize(ours[k])])) as Record<Kind, Summary>;
    const b = Object.fromEntries(kinds.map((k) => [k, summarize(base[k])])) as Record<Kind, Summary>;
    const byKind = <T>(f: (k: Kind) => T) => Object.fromEntries(kinds.map((k) => [k, f(k)]));
    const problems = Object.entries(plans).flatMap(([name, list]) => list.flatMap((p) => p.problems.map((d) => `${name}: ${d}`)));
    const rowsOut: Row[] = kinds.map((k) => ({
      metric: `${k}${required.includes(k) ? "" : " (extra)"}`,
      unit: "ms",
      value: s[k],
      baseline: { label: "1k rows p99", value: b[k].p99 },
      ratio: s[k].p99 / b[k].p99,
      target: "p99 < 10",
      ok: s[k].p99 < 10,
    }));
    for (const k of required) {
      rowsOut.push({
        metric: `${k}, server time`,
        unit: "ms",
        value: h[k],
        baseline: { label: "1k rows p99", value: hb[k].p99 },
        ratio: h[k].p99 / hb[k].p99,
      });
    }
    rowsOut.push({ metric: "database size", unit: "MB", value: summarize([big.dbMb]) });
    return {
      json: {
        rows,
        dbMb: round(big.dbMb),
        p99Ms: byKind((k) => round(s[k].p99)),
        p50Ms: byKind((k) => round(s[k].median)),
        maxMs: byKind((k) => round(s[k].max)),
        baselineRows: small.rows,
        baselineP99Ms: byKind((k) => round(b[k].p99)),
        // Inside the server (app.fetch to its Response): routing, auth, the query and the JSON, without socket and client.
        serverP99Ms: byKind((k) => round(h[k].p99)),
        serverP50Ms: byKind((k) => round(h[k].median)),
        baselineServerP99Ms: byKind((k) => round(hb[k].p99)),
        samplesPerQuery: s.list.n,
        events: big.events,
        services: big.services.length,
        seedMs: Math.round(big.seedMs),
        planProblems: problems,
        plans: Object.fromEntries(Object.entries(plans).map(([k, list]) => [k, list.map((p) => p.plan.join("; "))])),
      },
      rows: rowsOut,
      notes: problems.length ? [`history: query plans without an index: ${problems.join(" | ")}`] : [],
    };
  },
};
