import { createHash } from "node:crypto";
import { DOCKER_HUB, isDigest, repoKey, repoTagKey, type ImageRef } from "../domain/image-ref.js";
import { parseAuthChallenges, recordRateLimit, type RateLimit } from "./registry-headers.js";
import { imageCreatedAt } from "./image-created.js";
import { listTags } from "./tag-list.js";
import { readRegistryBody, readRegistryJson } from "./read-json.js";
import { RegistryError, type RegistryCredentials, type RegistryPort, type ResolvedManifest } from "./registry-port.js";

export interface RegistryClientOptions {
  /** `host:port` entries reached over plain http; every other registry is reached over https. */
  insecureRegistries: string[];
  /**
   * WITH_INSECURE_REGISTRY: a registry that cannot be reached over https is
   * tried over plain http, as `docker manifest inspect --insecure` does, and
   * then remembered as such. Certificates are still checked.
   */
  fallbackToHttp?: boolean;
  /** Credentials by registry host as in `ImageRef.registry` (`docker.io`, `127.0.0.1:5000`). */
  credentialsFor(registry: string): RegistryCredentials | undefined;
  fetch?: typeof fetch;
  /** Per request, default 10000. */
  timeoutMs?: number;
  /** Clock for token expiry, default `Date.now`. */
  now?: () => number;
  /** Tags asked for per page of a tag list (`n`), default 1000; tests shorten it to see the pagination. */
  tagsPageSize?: number;
}

export type RegistryClient = RegistryPort & {
  /** The `ratelimit-*` values from the latest response of `registry` that carried them. */
  lastRateLimit(registry: string): RateLimit | undefined;
  /** Manifest requests sent to registries so far, by method; token requests are not counted. */
  requestCount(): { head: number; get: number };
};

type Ref = Pick<ImageRef, "registry" | "repository" | "tag">;
type RepoRef = Pick<ImageRef, "registry" | "repository">;
/** `registry/repo:tag` for a manifest, `registry/repo` for a repository. */
const nameOf = (ref: RepoRef) => ("tag" in ref ? repoTagKey(ref as Ref) : repoKey(ref));

// Without the index and list types a registry swaps a multi-arch tag for one child
// manifest (or 404s an OCI index), and we would pin a digest `docker pull` never uses.
const MANIFEST_ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.oci.image.manifest.v1+json",
].join(", ");
/** A token answer is a few kilobytes; a megabyte is far past any. */
const MAX_TOKEN_BYTES = 1024 * 1024;
const MIN_TOKEN_SECONDS = 60;
// Renew early so that a request already in flight never carries a token that dies on the way.
const TOKEN_MARGIN_SECONDS = 10;

/** `https://registry-1.docker.io` for `docker.io`; `http://` only for listed insecure registries. */
export function registryOrigin(registry: string, insecureRegistries: Iterable<string>): string {
  const host = registry === DOCKER_HUB ? "registry-1.docker.io" : registry;
  const insecure = new Set(insecureRegistries).has(registry);
  return `${insecure ? "http" : "https"}://${host}`;
}

export function createRegistryClient(opts: RegistryClientOptions): RegistryClient {
  const doFetch = opts.fetch ?? ((input, init) => fetch(input, init));
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const now = opts.now ?? Date.now;
  const insecure = new Set(opts.insecureRegistries);
  const tokens = new Map<string, { value: string; expiresAt: number }>();
  const basicRegistries = new Set<string>();
  const rateLimits = new Map<string, RateLimit>();
  const counts = { head: 0, get: 0 };

  /** Registry errors that came of an https request to a server that speaks plain http. */
  const tlsFailures = new WeakSet<RegistryError>();

  async function send(url: string, init: RequestInit, target: string): Promise<Response> {
    try {
      return await doFetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      const failure = new RegistryError("unreachable", `${target} unreachable: ${describeNetworkError(err, timeoutMs)}`);
      if (isTlsFailure(err)) tlsFailures.add(failure);
      throw failure;
    }
  }

  function cachedAuthorization(ref: RepoRef, scope: string): string | undefined {
    const cached = tokens.get(`${ref.registry} ${scope}`);
    if (cached && cached.expiresAt > now()) return `Bearer ${cached.value}`;
    const credentials = basicRegistries.has(ref.registry) ? opts.credentialsFor(ref.registry) : undefined;
    return credentials && basicAuthorization(credentials);
  }

  async function authorize(ref: RepoRef, scope: string, header: string | null): Promise<string> {
    const challenges = parseAuthChallenges(header ?? "");
    const credentials = opts.credentialsFor(ref.registry);
    const bearer = challenges.find((c) => c.scheme === "bearer");
    if (bearer) return `Bearer ${await fetchToken(ref, scope, bearer.params, credentials)}`;
    if (!challenges.some((c) => c.scheme === "basic")) {
      throw new RegistryError("unauthorized", `registry ${ref.registry} answered 401 without a Bearer or Basic challenge`);
    }
    if (!credentials) {
      throw new RegistryError("unauthorized", `registry ${ref.registry} requires a login and no credentials are configured for it`);
    }
    basicRegistries.add(ref.registry);
    return basicAuthorization(credentials);
  }

  async function fetchToken(ref: RepoRef, scope: string, params: Record<string, string>, credentials?: RegistryCredentials) {
    let url: URL;
    try {
      url = new URL(params.realm ?? "");
    } catch {
      throw new RegistryError("protocol", `registry ${ref.registry} sent a Bearer challenge without a usable realm`);
    }
    // A TLS registry pointing at a plain-http realm would have us send the password in clear text.
    if (credentials && url.protocol !== "https:" && !insecure.has(ref.registry)) {
      throw new RegistryError("protocol", `registry ${ref.registry} sent a non-https token realm (${url.origin}); refusing to send credentials`);
    }
    if (params.service) url.searchParams.set("service", params.service);
    url.searchParams.set("scope", scope);
    const who = credentials ? `user "${credentials.username}"` : "anonymous access";
    const requestedAt = now();
    const headers: Record<string, string> = credentials ? { Authorization: basicAuthorization(credentials) } : {};
    const res = await send(url.href, { headers }, `token service ${url.origin}`);
    if (!res.ok) {
      await discard(res);
      // A token service that is down (auth.docker.io answering 503) is tried again, as the registry itself would be.
      if (res.status >= 500) {
        throw new RegistryError("unreachable", `token service ${url.origin} could not answer for ${scope} (HTTP ${res.status})`);
      }
      const kind = res.status === 401 || res.status === 403 ? "unauthorized" : res.status === 429 ? "rate_limited" : "protocol";
      throw new RegistryError(kind, `token service ${url.origin} refused ${who} for ${scope} (HTTP ${res.status})`);
    }
    const body = (await readRegistryJson(res, ref.registry, `the token of ${url.origin}`, MAX_TOKEN_BYTES)) as {
      token?: unknown;
      access_token?: unknown;
      expires_in?: unknown;
    } | null;
    const value = [body?.token, body?.access_token].find((t): t is string => typeof t === "string" && t !== "");
    if (!value) throw new RegistryError("protocol", `token service ${url.origin} answered without token or access_token`);
    const lifetime = typeof body?.expires_in === "number" && Number.isFinite(body.expires_in) ? body.expires_in : 0;
    const seconds = Math.max(MIN_TOKEN_SECONDS, lifetime) - TOKEN_MARGIN_SECONDS;
    tokens.set(`${ref.registry} ${scope}`, { value, expiresAt: requestedAt + seconds * 1000 });
    return value;
  }

  /** One registry request with the repository's pull scope: a cached token first, a fresh one once on 401. */
  async function request(method: "HEAD" | "GET", ref: RepoRef, path: string, accept: string, count?: keyof typeof counts): Promise<Response> {
    const scope = `repository:${ref.repository}:pull`;
    const attempt = async (authorization: string | undefined): Promise<Response> => {
      if (count) counts[count]++;
      const headers: Record<string, string> = { Accept: accept };
      if (authorization) headers.Authorization = authorization;
      const wasInsecure = insecure.has(ref.registry);
      let res: Response;
      try {
        res = await send(`${registryOrigin(ref.registry, insecure)}${path}`, { method, headers }, `registry ${ref.registry}`);
      } catch (err) {
        // Only a registry that answered https in plain http is taken to speak it. One that did not answer
        // (down, a timeout, refused) is not: learning http from that would send every later request, and its
        // credentials, in clear text to whatever answers there.
        if (!opts.fallbackToHttp || wasInsecure || !(err instanceof RegistryError) || !tlsFailures.has(err)) throw err;
        insecure.add(ref.registry);
        return attempt(authorization);
      }
      recordRateLimit(rateLimits, ref.registry, res.headers);
      return res;
    };
    const first = await attempt(cachedAuthorization(ref, scope));
    if (first.status !== 401) return first;
    await discard(first);
    // The registry refused whatever we had cached, so only a fresh token can help.
    tokens.delete(`${ref.registry} ${scope}`);
    const second = await attempt(await authorize(ref, scope, first.headers.get("www-authenticate")));
    if (second.status !== 401) return second;
    await discard(second);
    const credentials = opts.credentialsFor(ref.registry);
    const as = credentials ? `the credentials of user "${credentials.username}"` : "anonymous access";
    throw new RegistryError(
      "unauthorized",
      `registry ${ref.registry} refused ${as} to ${nameOf(ref)} (HTTP 401); the repository may be private or missing`,
    );
  }

  const requestManifest = (method: "HEAD" | "GET", ref: Ref) =>
    request(method, ref, `/v2/${ref.repository}/manifests/${encodeURIComponent(ref.tag)}`, MANIFEST_ACCEPT, method === "HEAD" ? "head" : "get");

  async function ensureOk(res: Response, method: string, ref: RepoRef, what = nameOf(ref)): Promise<void> {
    if (res.ok) return;
    await discard(res);
    // A 5xx is the registry's own trouble, often for a moment (distribution answers 500 while a push it is still
    // taking in is half there; a proxy in front of it 502–504): tried again like one that cannot be reached.
    const [kind, verdict] =
      res.status === 404
        ? (["not_found", "not found"] as const)
        : res.status === 429
          ? (["rate_limited", "rate-limited"] as const)
          : res.status >= 500
            ? (["unreachable", "could not be answered"] as const)
            : res.status === 403
              ? (["unauthorized", "denied"] as const)
              : (["protocol", "refused"] as const);
    throw new RegistryError(kind, `${method} ${what}: ${verdict} by registry ${ref.registry} (HTTP ${res.status})`);
  }

  return {
    async resolveDigest(ref): Promise<ResolvedManifest> {
      const head = await requestManifest("HEAD", ref);
      // A registry (or a proxy before it) that does not take HEAD on manifests is asked with GET, as docker pull would.
      const headRefused = head.status === 405 || head.status === 501;
      if (headRefused) await discard(head);
      else await ensureOk(head, "HEAD", ref);
      const digest = headRefused ? undefined : head.headers.get("docker-content-digest")?.trim();
      if (digest) {
        if (!isDigest(digest)) throw new RegistryError("protocol", `registry ${ref.registry} sent a malformed digest for ${repoTagKey(ref)}`);
        return { digest, ...refuseSchema1(ref, mediaTypeOf(head)) };
      }
      // Older registries omit the header; a GET counts as a Docker Hub pull, so only now (or when HEAD was refused).
      const get = await requestManifest("GET", ref);
      await ensureOk(get, "GET", ref);
      const media = refuseSchema1(ref, mediaTypeOf(get));
      const body = await readRegistryBody(get, ref.registry, `manifest of ${repoTagKey(ref)}`);
      return { digest: `sha256:${createHash("sha256").update(body).digest("hex")}`, ...media };
    },
    listTags: (ref) => listTags(ref, { request, ensureOk, pageSize: opts.tagsPageSize, origin: () => registryOrigin(ref.registry, insecure) }),
    imageCreatedAt: (ref, digest) => imageCreatedAt(ref, digest, { request, ensureOk, manifestAccept: MANIFEST_ACCEPT, now }),
    lastRateLimit: (registry) => (rateLimits.has(registry) ? { ...rateLimits.get(registry) } : undefined),
    requestCount: () => ({ ...counts }),
  };
}

function basicAuthorization({ username, password }: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
}

/**
 * Docker's schema 1 manifests (`…manifest.v1+json`, signed `…v1+prettyjws`): Docker Engine no longer pulls them, so
 * pinning one would end in a rollout whose every task fails to pull.
 */
function refuseSchema1(ref: Ref, media: { mediaType?: string }): { mediaType?: string } {
  if (media.mediaType?.startsWith("application/vnd.docker.distribution.manifest.v1+")) {
    throw new RegistryError(
      "protocol",
      `${repoTagKey(ref)} is a Docker schema 1 image (${media.mediaType}), which Docker no longer pulls; push it again with a current client`,
    );
  }
  return media;
}

function mediaTypeOf(res: Response): { mediaType?: string } {
  const mediaType = res.headers.get("content-type")?.split(";")[0]?.trim();
  return mediaType ? { mediaType } : {};
}

async function discard(res: Response): Promise<void> {
  await res.body?.cancel().catch(() => undefined);
}

/**
 * An https request answered by something that does not speak TLS (a plain-http registry): OpenSSL's record-layer
 * errors only. A TLS alert (`ERR_SSL_TLSV1_ALERT_…`, `…_HANDSHAKE_FAILURE`) or an untrusted certificate comes from a
 * server that speaks TLS: falling back to clear text there would undo the check.
 */
function isTlsFailure(err: unknown): boolean {
  const code = (err as { cause?: { code?: unknown } } | undefined)?.cause?.code;
  return code === "ERR_SSL_WRONG_VERSION_NUMBER" || code === "ERR_SSL_PACKET_LENGTH_TOO_LONG" || code === "EPROTO";
}

function describeNetworkError(err: unknown, timeoutMs: number): string {
  if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")) return `no answer within ${timeoutMs} ms`;
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  const detail = cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : undefined);
  return typeof detail === "string" ? detail : "network error";
}
