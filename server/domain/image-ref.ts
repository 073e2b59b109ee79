/**
 * Image references, parsed by the grammar of distribution/reference and
 * normalized the way the Docker engine does it: `nginx` is
 * `docker.io/library/nginx:latest`, `index.docker.io` is `docker.io`, and a
 * first path component is a registry only when it has a `.` or `:` or is
 * `localhost` (or has capitals, which no repository may have).
 */
export const DOCKER_HUB = "docker.io";

export interface ImageRef {
  /** Registry host, with port when one was given: `docker.io`, `127.0.0.1:5000`. */
  registry: string;
  /** Repository path inside the registry: `library/nginx`, `acme/web`. */
  repository: string;
  /** Tag; `latest` when the reference had neither tag nor digest. */
  tag: string;
  /** `sha256:…` when the reference was pinned. */
  digest?: string;
}

export class InvalidReferenceError extends Error {
  override readonly name = "InvalidReferenceError";
}

const alnum = "[a-z0-9]+";
const separator = "(?:[._]|__|-+)";
const pathComponent = `${alnum}(?:${separator}${alnum})*`;
const domainComponent = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const host = `(?:${domainComponent}(?:\\.${domainComponent})*|\\[[0-9a-fA-F:.]+\\])`;
const domainRe = new RegExp(`^${host}(?::[0-9]+)?$`);
const pathRe = new RegExp(`^${pathComponent}(?:/${pathComponent})*$`);
const tagRe = /^[\w][\w.-]{0,127}$/;
const digestRe = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const sha256Re = /^sha256:[0-9a-f]{64}$/;

export function isDigest(value: string): boolean {
  return digestRe.test(value) && (!value.startsWith("sha256:") || sha256Re.test(value));
}

export function isTag(value: string): boolean {
  return tagRe.test(value);
}

/** Splits `name` into registry and repository the way the engine does. */
export function splitName(name: string, defaultRegistry = DOCKER_HUB): { registry: string; repository: string } {
  const slash = name.indexOf("/");
  const first = slash === -1 ? "" : name.slice(0, slash);
  const isDomain = slash !== -1 && (first.includes(".") || first.includes(":") || first === "localhost" || first.toLowerCase() !== first);
  let registry = isDomain ? first : defaultRegistry;
  let repository = isDomain ? name.slice(slash + 1) : name;
  if (registry === "index.docker.io" || registry === "registry-1.docker.io") registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !repository.includes("/")) repository = `library/${repository}`;
  if (registry === DOCKER_HUB && repository.startsWith("_/")) repository = `library/${repository.slice(2)}`;
  return { registry, repository };
}

/**
 * Parses any reference docker accepts (`nginx`, `acme/web:1.2`,
 * `127.0.0.1:5000/app:v2@sha256:…`) into its normalized parts.
 */
export function parseImageRef(input: string, defaultRegistry = DOCKER_HUB): ImageRef {
  const text = input.trim();
  if (text === "" || text.length > 512) throw new InvalidReferenceError(`invalid reference format: "${input}"`);
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) throw new InvalidReferenceError(`invalid digest in reference "${input}"`);
  }
  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(":");
  if (lastColon > rest.lastIndexOf("/")) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!isTag(tag)) throw new InvalidReferenceError(`invalid tag in reference "${input}"`);
  }
  const { registry, repository } = splitName(rest, defaultRegistry);
  if (!domainRe.test(registry)) throw new InvalidReferenceError(`invalid registry "${registry}" in reference "${input}"`);
  if (repository.toLowerCase() !== repository) {
    throw new InvalidReferenceError(`repository name must be lowercase: "${input}"`);
  }
  if (!pathRe.test(repository) || `${registry}/${repository}`.length > 255) {
    throw new InvalidReferenceError(`invalid repository name in reference "${input}"`);
  }
  return { registry, repository, tag: tag ?? "latest", ...(digest ? { digest } : {}) };
}

/** `registry/repository:tag`, the key services and pushes are matched on. */
export function repoTagKey(ref: Pick<ImageRef, "registry" | "repository" | "tag">): string {
  return `${ref.registry}/${ref.repository}:${ref.tag}`;
}

/** `registry/repository`, what token repository patterns are matched on. */
export function repoKey(ref: Pick<ImageRef, "registry" | "repository">): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The short form docker prints: `nginx`, `acme/web`, `127.0.0.1:5000/app`. */
export function familiarName(ref: Pick<ImageRef, "registry" | "repository">): string {
  if (ref.registry !== DOCKER_HUB) return `${ref.registry}/${ref.repository}`;
  return ref.repository.startsWith("library/") && ref.repository.split("/").length === 2 ? ref.repository.slice("library/".length) : ref.repository;
}

/** `repo:tag` in familiar form, the `image` field of a deployment. */
export function familiarRepoTag(ref: Pick<ImageRef, "registry" | "repository" | "tag">): string {
  return `${familiarName(ref)}:${ref.tag}`;
}

/** `repo:tag@sha256:…`, what goes into the service spec (as the docker CLI writes it). */
export function pinnedImage(ref: Pick<ImageRef, "registry" | "repository" | "tag">, digest: string): string {
  return `${familiarRepoTag(ref)}@${digest}`;
}

/** Parses a service's spec image, or returns undefined when it is not a valid reference. */
export function tryParseImageRef(input: string, defaultRegistry = DOCKER_HUB): ImageRef | undefined {
  try {
    return parseImageRef(input, defaultRegistry);
  } catch {
    return undefined;
  }
}

/**
 * Whether a spec image follows a tag. `nginx` follows `latest` implicitly, but
 * `nginx@sha256:…` was pinned by digest alone on purpose: it follows nothing,
 * and must not be moved to `:latest` (Shepherd's `cut -d@ -f1` did exactly that).
 */
export function followsTag(input: string): boolean {
  const at = input.indexOf("@");
  if (at === -1) return true;
  const name = input.slice(0, at);
  return name.lastIndexOf(":") > name.lastIndexOf("/");
}

/** Whether two spec images name the same thing: normalized repository, tag and digest (`nginx` is `docker.io/library/nginx:latest`). */
export function sameImage(a: string, b: string): boolean {
  const x = tryParseImageRef(a);
  const y = tryParseImageRef(b);
  if (!x || !y) return a === b;
  return repoTagKey(x) === repoTagKey(y) && x.digest === y.digest;
}
