import type { Scope } from "../../server/auth/tokens.js";
import { registryPush, waitForFinal, type TestServer } from "./test-server.js";

/** Calls the API as a holder of the given scopes; returns status, parsed body and raw text. */
export async function api(server: TestServer, method: string, path: string, opts: { scopes?: Scope[]; json?: unknown; token?: string } = {}) {
  const token =
    opts.token ?? (await server.tokens.signApiToken({ sub: "ops-alice", scopes: opts.scopes ?? ["deployments:read", "deployments:write"] }));
  const res = await server.request(path, {
    method,
    headers: { authorization: `Bearer ${token}` },
    ...(opts.json === undefined ? {} : { json: opts.json }),
  });
  const text = await res.text();
  return { status: res.status, text, body: text ? JSON.parse(text) : undefined };
}

/** Deploys `tag` → `digest` to the service through a real registry webhook and waits for the outcome. */
export async function deployThroughWebhook(server: TestServer, opts: { repository: string; tag: string; digest: string; host?: string }) {
  const host = opts.host ?? "127.0.0.1:5000";
  server.registry.push({ registry: host, repository: opts.repository, tag: opts.tag }, opts.digest);
  const token = await server.tokens.signWebhookToken({ sub: "ci", repos: [`${host}/${opts.repository.split("/")[0]}/*`] });
  const res = await server.request("/hooks/registry", {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
    json: registryPush({ host, repository: opts.repository, tag: opts.tag, digest: opts.digest }),
  });
  const body = (await res.json()) as { deployments: Array<{ id: string }>; ignored: unknown[] };
  if (res.status !== 202) throw new Error(`webhook answered ${res.status}: ${JSON.stringify(body)}`);
  return Promise.all(body.deployments.map((d) => waitForFinal(server, d.id)));
}
