import { registryPush } from "../../../test/helpers/test-server.js";
import { httpBytes, type RawRequest } from "./raw-http.js";

/** Everything a hostile request may carry: the tokens it can pick from and the repository a push names. */
export interface HostileKit {
  /** A webhook token for `repository` (valid), an API token with deployments:read, one with deployments:write. */
  webhook: string;
  apiRead: string;
  apiWrite: string;
  /** Tokens that must never be accepted: signed by another key, expired, alg none, wrong audience. */
  forged: string[];
  /** "127.0.0.1:5000/reg/app", the repository of a real service. */
  repository: string;
  digest: string;
}

export type Category =
  "random-bytes" | "broken-json" | "deep-json" | "wrong-types" | "bad-tokens" | "path-tricks" | "headers" | "framing" | "slow-client";

export interface HostileCase extends RawRequest {
  category: Category;
  /** For the report: what was sent, short. */
  label: string;
}

/** A small seeded generator (mulberry32), so a run can be replayed exactly with its seed. */
export function seeded(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick<T>(items: readonly T[]): T {
      return items[Math.floor(next() * items.length)]!;
    },
    bytes(n: number): Buffer {
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) b[i] = Math.floor(next() * 256);
      return b;
    },
  };
}
type Rng = ReturnType<typeof seeded>;

const JSON_TYPES = ["application/json", "application/vnd.docker.distribution.events.v1+json"];
const EVIL_NAMES = [
  "x%2F..%2F..%2Finfo",
  "%2E%2E",
  "..%2F..%2Fcontainers%2Fjson",
  "%00",
  "web%00",
  "%20OR%201=1",
  "%F0%9F%92%A5",
  "a".repeat(64),
  "-web",
  "web-",
  "%252e%252e",
  "web%3Fforce=1",
  "web%23frag",
  "%C0%AE%C0%AE",
  "web%0D%0AX-Injected:%201",
];

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

function pushEnvelope(kit: HostileKit): Record<string, unknown> {
  const [host, ...path] = kit.repository.split("/");
  return registryPush({ id: "evt-hostile", host, repository: path.join("/"), tag: "hostile", digest: kit.digest });
}

const WRONG = [0, -1, 1e308, true, null, [], [1, 2], {}, { $ne: 1 }, "", "\u0000", "x".repeat(5000)];

/** The push envelope with one field given a value of the wrong type or shape: never a push anyone could deploy. */
function wrongTyped(rng: Rng, kit: HostileKit): { body: unknown; label: string } {
  const body = pushEnvelope(kit) as { events: Array<Record<string, unknown> & { target: Record<string, unknown> }> };
  const event = body.events[0]!;
  const spots: Array<[string, (v: unknown) => void]> = [
    ["events", (v) => ((body as Record<string, unknown>).events = v)],
    ["events[0]", (v) => ((body.events as unknown[])[0] = v)],
    ["action", (v) => (event.action = v)],
    ["target", (v) => (event.target = v as Record<string, unknown>)],
    ["target.digest", (v) => (event.target.digest = v)],
    ["target.repository", (v) => (event.target.repository = v)],
    ["target.tag", (v) => (event.target.tag = v)],
    ["target.mediaType", (v) => (event.target.mediaType = v)],
    ["request", (v) => (event.request = v)],
    ["request.host", (v) => ((event.request as Record<string, unknown>).host = v)],
  ];
  const [where, set] = rng.pick(spots);
  let value = rng.pick(WRONG);
  // An empty or absent tag is an untagged push (ignored, by design); make it a wrong type instead.
  if (where === "target.tag" && (value === null || value === "")) value = 7;
  if (where === "action" && typeof value === "string") value = 7;
  set(value);
  return { body, label: `${where}=${JSON.stringify(value)?.slice(0, 20)}` };
}

function deep(depth: number): string {
  return "[".repeat(depth) + "]".repeat(depth);
}

/** One hostile request of the given category; `kit` makes some of them carry real, valid tokens. */
export function hostileCase(category: Category, rng: Rng, kit: HostileKit): HostileCase {
  const goodAuth = () => rng.pick([bearer(kit.webhook), bearer(kit.apiRead), bearer(kit.apiWrite)]);
  const hook = () => rng.pick(["/hooks/registry", `/hooks/dockerhub/${kit.webhook}`]);
  const write = () => `/api/services/${rng.pick(["web", "x", "deployer-fault-none"])}/${rng.pick(["deploy", "rollback"])}`;
  const target = () => (rng.next() < 0.6 ? { path: hook(), auth: bearer(kit.webhook) } : { path: write(), auth: bearer(kit.apiWrite) });
  const post = (path: string, headers: Record<string, string>, body: Buffer | string) => httpBytes("POST", path, headers, body);
  switch (category) {
    case "random-bytes": {
      const t = target();
      const body = rng.bytes(1 + rng.int(4096));
      return {
        category,
        label: `${t.path} ${body.length} random bytes`,
        bytes: post(t.path, { ...t.auth, "content-type": rng.pick(JSON_TYPES) }, body),
      };
    }
    case "broken-json": {
      const t = target();
      const good = JSON.stringify(pushEnvelope(kit));
      const body = rng.pick([
        good.slice(0, rng.int(good.length)),
        good.replace(/}$/, ",}"),
        `${good}${good}`,
        good.replace(/"/g, "'"),
        Buffer.concat([Buffer.from(good.slice(0, 20)), Buffer.from([0xff, 0xfe, 0xc0]), Buffer.from(good.slice(20))]).toString("latin1"),
        "\uFEFF" + good,
        "NaN",
        "",
      ]);
      return {
        category,
        label: `${t.path} broken json`,
        bytes: post(t.path, { ...t.auth, "content-type": rng.pick(JSON_TYPES) }, Buffer.from(body, "latin1")),
      };
    }
    case "deep-json": {
      const t = target();
      // Mostly modest depths past the limit; one in ten is the 1 MB, 500,000-deep body that once held the loop for seconds.
      const depth = rng.next() < 0.1 ? 500_000 : 33 + rng.int(5000);
      const body = rng.next() < 0.5 ? deep(depth) : `{"events":${deep(depth)}}`;
      return { category, label: `${t.path} depth ${depth}`, bytes: post(t.path, { ...t.auth, "content-type": "application/json" }, body) };
    }
    case "wrong-types": {
      if (rng.next() < 0.7) {
        const { body, label } = wrongTyped(rng, kit);
        const path = hook();
        return {
          category,
          label: `${path} ${label}`,
          bytes: post(path, { ...bearer(kit.webhook), "content-type": rng.pick(JSON_TYPES) }, JSON.stringify(body)),
        };
      }
      const field = rng.pick(["tag", "digest", "to", "extra"]);
      const body = JSON.stringify({ [field]: rng.pick(WRONG) });
      const path = write();
      return {
        category,
        label: `${path} ${body.slice(0, 40)}`,
        bytes: post(path, { ...bearer(kit.apiWrite), "content-type": "application/json" }, body),
      };
    }
    case "bad-tokens": {
      const forged = rng.pick([...kit.forged, "", "garbage", "Bearer", "a.b.c", kit.webhook.slice(0, -2), `${kit.webhook}x`]);
      const path = rng.pick([
        "/hooks/registry",
        `/hooks/dockerhub/${encodeURIComponent(forged) || "x"}`,
        "/api/deployments",
        "/api/services",
        write(),
      ]);
      // Right token, wrong door: a webhook token on the API, a read token on a write route.
      const auth =
        rng.next() < 0.3
          ? rng.pick([bearer(kit.webhook), bearer(kit.apiRead)])
          : { authorization: rng.pick([`Bearer ${forged}`, forged, `Basic ${forged}`]) };
      if (path.startsWith("/hooks") && auth.authorization === `Bearer ${kit.webhook}`) auth.authorization = `Bearer ${kit.apiWrite}`;
      const method = path.startsWith("/hooks") || path.endsWith("deploy") || path.endsWith("rollback") ? "POST" : "GET";
      const body = method === "POST" ? JSON.stringify(pushEnvelope(kit)) : undefined;
      return { category, label: `${method} ${path} forged`, bytes: httpBytes(method, path, { ...auth, "content-type": "application/json" }, body) };
    }
    case "path-tricks": {
      const name = rng.pick(EVIL_NAMES);
      const path = rng.pick([
        `/api/services/${name}/${rng.pick(["deploy", "rollback", "resume"])}`,
        `/api/deployments/${name}`,
        `/api/deployments/${name}/events`,
        `/api/${name}/services`,
        `/hooks/dockerhub/${name}`,
        `/../../../etc/passwd`,
        `//api//services`,
        `/api/deployments?limit=${rng.pick(["-1", "1e9", "abc", "%00", "1&limit=2"])}`,
        `/api/deployments?cursor=${name}`,
      ]);
      const method = /deploy$|rollback$|resume$|^\/hooks/.test(path) ? "POST" : "GET";
      const body = method === "POST" ? (path.endsWith("deploy") ? '{"tag":"v1"}' : "{}") : undefined;
      return { category, label: `${method} ${path}`, bytes: httpBytes(method, path, { ...goodAuth(), "content-type": "application/json" }, body) };
    }
    case "headers": {
      const kind = rng.int(5);
      const headers: Record<string, string> = { ...goodAuth() };
      if (kind === 0) headers["x-big"] = "a".repeat(16_384 + rng.int(50_000));
      if (kind === 1) headers.authorization = `Bearer ${"a".repeat(17_000)}`;
      if (kind === 2) for (let i = 0; i < 150 + rng.int(200); i++) headers[`x-h${i}`] = String(i);
      if (kind === 3)
        headers["content-type"] = rng.pick(["text/plain", "application/json; charset=utf-16", "application/jsonx", "multipart/form-data", ""]);
      if (kind === 4) headers["x-bytes"] = Buffer.from([0xc3, 0x28, 0xe2, 0x82]).toString("latin1");
      const path = rng.pick(["/healthz", "/api/deployments", "/hooks/registry"]);
      const method = path === "/hooks/registry" ? "POST" : "GET";
      return {
        category,
        label: `${method} ${path} headers#${kind}`,
        bytes: httpBytes(method, path, headers, method === "POST" ? JSON.stringify(pushEnvelope(kit)) : undefined),
      };
    }
    case "framing": {
      const auth = `authorization: Bearer ${kit.webhook}\r\n`;
      const variants: Array<[string, string, boolean?]> = [
        ["garbage line", "GARBAGE\r\n\r\n"],
        ["bad version", "GET /healthz HTTP/9.9\r\nhost: x\r\n\r\n"],
        ["http/0.9", "GET /healthz\r\n\r\n"],
        ["lowercase method", "get /healthz HTTP/1.1\r\nhost: x\r\n\r\n"],
        ["unknown method", "BREW /healthz HTTP/1.1\r\nhost: x\r\n\r\n"],
        [
          "bad chunk size",
          `POST /hooks/registry HTTP/1.1\r\nhost: x\r\n${auth}content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
        ],
        [
          "CL and TE",
          `POST /hooks/registry HTTP/1.1\r\nhost: x\r\n${auth}content-type: application/json\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
        ],
        [
          "two lengths",
          `POST /hooks/registry HTTP/1.1\r\nhost: x\r\n${auth}content-type: application/json\r\ncontent-length: 2\r\ncontent-length: 9\r\n\r\n{}`,
        ],
        ["expect", "POST /hooks/registry HTTP/1.1\r\nhost: x\r\nexpect: 100-tea\r\ncontent-length: 2\r\n\r\n{}"],
        ["bare LF", "GET /healthz HTTP/1.1\nhost: x\n\n"],
        ["space in header name", "GET /healthz HTTP/1.1\r\nhost: x\r\nbad header: 1\r\n\r\n"],
        [
          "body cut short",
          `POST /hooks/registry HTTP/1.1\r\nhost: x\r\n${auth}content-type: application/json\r\ncontent-length: 900\r\n\r\n{"events":[`,
          true,
        ],
        ["negative length", `POST /hooks/registry HTTP/1.1\r\nhost: x\r\n${auth}content-type: application/json\r\ncontent-length: -5\r\n\r\n{}`],
        ["NUL in path", "GET /api/depl\u0000oyments HTTP/1.1\r\nhost: x\r\n\r\n"],
      ];
      const [label, text, end] = rng.pick(variants);
      return { category, label, bytes: Buffer.from(text, "latin1"), end };
    }
    case "slow-client": {
      const bytes = httpBytes("POST", "/hooks/registry", { ...bearer(kit.webhook), "content-type": "application/json" }, deep(40));
      return { category, label: "slow /hooks/registry depth 40", bytes, chunkSize: 8, gapMs: 25 };
    }
  }
}

/** The mix of a run: every category, the slow and the 1 MB ones rarer. */
export const CATEGORY_WEIGHTS: Record<Category, number> = {
  "random-bytes": 14,
  "broken-json": 14,
  "deep-json": 6,
  "wrong-types": 18,
  "bad-tokens": 16,
  "path-tricks": 14,
  headers: 8,
  framing: 9,
  "slow-client": 1,
};

export function pickCategory(rng: Rng): Category {
  const total = Object.values(CATEGORY_WEIGHTS).reduce((a, b) => a + b, 0);
  let at = rng.next() * total;
  for (const [category, weight] of Object.entries(CATEGORY_WEIGHTS) as Array<[Category, number]>) {
    if ((at -= weight) < 0) return category;
  }
  return "random-bytes";
}
