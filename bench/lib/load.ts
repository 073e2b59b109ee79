import autocannon from "autocannon";
import { registryPush } from "../../test/helpers/test-server.js";

/** The registry host every in-process scenario pretends to push to. */
export const benchRegistryHost = "127.0.0.1:5000";

export interface LoadResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  completed: number;
  non2xx: number;
  errors: number;
  durationMs: number;
}

export interface LoadOptions {
  url: string;
  token: string;
  /** Body of the n-th request. */
  body: (n: number) => string;
  connections: number;
  durationS?: number;
  amount?: number;
  /** Default `/hooks/registry`. */
  path?: string;
}

/** A distribution notification for `bench/<repo>:<tag>`, as registry 2.8 posts it. */
export function pushBody(opts: { id?: string; repository: string; tag?: string; digest: string }): string {
  return JSON.stringify(registryPush({ host: benchRegistryHost, tag: "live", ...opts }));
}

export function digestOf(n: number, salt = "d"): string {
  return `sha256:${salt}${n.toString(16).padStart(63, "0")}`;
}

/** Drives `POST /hooks/registry` with autocannon (closed loop: each connection waits for its answer). */
export async function loadHooks(opts: LoadOptions): Promise<LoadResult> {
  let n = 0;
  const headers = { authorization: `Bearer ${opts.token}`, "content-type": "application/vnd.docker.distribution.events.v1+json" };
  const result = await autocannon({
    url: opts.url,
    connections: opts.connections,
    // autocannon rejects keys that are present but undefined.
    ...(opts.durationS === undefined ? {} : { duration: opts.durationS }),
    ...(opts.amount === undefined ? {} : { amount: opts.amount }),
    timeout: 30,
    requests: [{ method: "POST", path: opts.path ?? "/hooks/registry", headers, setupRequest: (req) => ({ ...req, body: opts.body(n++) }) }],
  });
  const completed = result["2xx"] + result.non2xx;
  const durationMs = result.finish.getTime() - result.start.getTime();
  return {
    rps: completed / (durationMs / 1000),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    maxMs: result.latency.max,
    completed,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    durationMs,
  };
}
