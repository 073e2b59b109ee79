import { DOCKER_HUB } from "../domain/image-ref.js";
import type { RegistryCredentials } from "./registry-port.js";

/**
 * Shepherd's per-service label naming a REGISTRIES_FILE `id`: that entry's
 * logins, and only those, are used for the service (Shepherd ran `docker --config <id>`).
 */
export const SHEPHERD_AUTH_LABEL = "shepherd.auth.config";

export interface RegistryCredentialEntry {
  registry: string;
  username: string;
  password: string;
}

export interface RegistriesFileEntry extends RegistryCredentialEntry {
  /** Shepherd's docker config name for this login; kept for compatibility. */
  id: string;
}

// Every spelling `docker login` and ~/.docker/config.json use for Docker Hub.
const DOCKER_HUB_ALIASES = new Set([DOCKER_HUB, "index.docker.io", "registry-1.docker.io"]);

/** `https://index.docker.io/v1/` → `docker.io`; `HTTP://Reg.example:5000/x` → `reg.example:5000`. */
export function normalizeRegistryHost(value: string): string {
  const withoutScheme = value.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, "");
  const host = (withoutScheme.split("/")[0] ?? "").toLowerCase();
  return DOCKER_HUB_ALIASES.has(host) ? DOCKER_HUB : host;
}

/**
 * Looks credentials up by registry host, whatever spelling the configuration or
 * the image reference used. When a host is listed twice the first entry wins.
 */
export function createCredentialStore(entries: RegistryCredentialEntry[]): (registry: string) => RegistryCredentials | undefined {
  const byHost = new Map<string, RegistryCredentials>();
  for (const { registry, username, password } of entries) {
    const host = normalizeRegistryHost(registry);
    if (!byHost.has(host)) byHost.set(host, { username, password });
  }
  return (registry) => byHost.get(normalizeRegistryHost(registry));
}

const FIELDS = ["id", "registry", "user", "password"] as const;

/**
 * Reads Shepherd's REGISTRIES_FILE: `id<TAB>registry<TAB>user<TAB>password` per
 * line, blank lines and `#` comments skipped. Shepherd silently skips bad lines; we
 * throw instead, since a skipped line shows up much later as a failed pull.
 * Errors name the line number only, as the line holds a password.
 */
export function parseRegistriesFile(text: string): RegistriesFileEntry[] {
  const entries: RegistriesFileEntry[] = [];
  text.split("\n").forEach((raw, index) => {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.trim() === "" || line.trimStart().startsWith("#")) return;
    // Shepherd reads with bash `read` and IFS=$'\t', which merges runs of tabs and drops leading/trailing ones.
    const fields = line.replace(/^\t+|\t+$/g, "").split(/\t+/);
    if (fields.length !== FIELDS.length) {
      throw new Error(`REGISTRIES_FILE line ${index + 1}: expected 4 tab-separated fields (id, registry, user, password), found ${fields.length}`);
    }
    const empty = fields.findIndex((field) => field.trim() === "");
    if (empty !== -1) throw new Error(`REGISTRIES_FILE line ${index + 1}: the ${FIELDS[empty]} field is empty`);
    const [id = "", registry = "", username = "", password = ""] = fields;
    entries.push({ id: id.trim(), registry: registry.trim(), username: username.trim(), password });
  });
  return entries;
}
