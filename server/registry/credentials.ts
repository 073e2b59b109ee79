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

/** REGISTRIES_FILE's logins, and the lines Shepherd would have skipped (by number only: a line holds a password). */
export interface RegistriesFile {
  entries: RegistriesFileEntry[];
  skipped: Array<{ line: number; reason: string }>;
}

/**
 * Reads Shepherd's REGISTRIES_FILE as Shepherd does: `id<TAB>registry<TAB>user<TAB>password` per line, through
 * bash `read` with IFS=$'\t' (runs of tabs merge, leading and trailing ones go), skipping comments (an id with a
 * `#` in it) and invalid lines (not four fields). Skipped lines are returned, so that the caller can say so.
 */
export function parseRegistriesFile(text: string): RegistriesFile {
  const entries: RegistriesFileEntry[] = [];
  const skipped: RegistriesFile["skipped"] = [];
  text.split("\n").forEach((raw, index) => {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    const fields = line.replace(/^\t+|\t+$/g, "").split(/\t+/);
    if (line.trim() === "" || fields[0]!.includes("#")) return;
    if (fields.length !== FIELDS.length || fields.some((field) => field.trim() === "")) {
      skipped.push({
        line: index + 1,
        reason: `expected 4 tab-separated fields (id, registry, user, password), found ${fields.filter((f) => f.trim()).length}`,
      });
      return;
    }
    const [id = "", registry = "", username = "", password = ""] = fields;
    entries.push({ id: id.trim(), registry: registry.trim(), username: username.trim(), password });
  });
  return { entries, skipped };
}

/** A docker CLI config file's logins (`auths`), and whether it names credential helpers, which the server does not run. */
export interface DockerConfigLogins {
  entries: RegistryCredentialEntry[];
  helpers: string[];
  /** Hosts whose entry holds no username and password the server can use (an identity token, say). */
  unusable: string[];
}

/**
 * The logins `docker login` wrote to a docker CLI config (~/.docker/config.json): each `auths` entry's `auth`
 * (base64 of `user:password`) or `username` and `password`. Shepherd's docker CLI read the same file, so a
 * mounted one keeps working. Throws on a file that is not such JSON.
 */
export function parseDockerConfig(text: string): DockerConfigLogins {
  const config = JSON.parse(text) as {
    auths?: Record<string, { auth?: string; username?: string; password?: string }>;
    credsStore?: string;
    credHelpers?: Record<string, string>;
  };
  if (typeof config !== "object" || config === null || Array.isArray(config)) throw new Error("expected a JSON object");
  const entries: RegistryCredentialEntry[] = [];
  const unusable: string[] = [];
  for (const [registry, login] of Object.entries(config.auths ?? {})) {
    if (typeof login !== "object" || login === null) continue;
    let username = login.username;
    let password = login.password;
    if (typeof login.auth === "string" && login.auth !== "") {
      const decoded = Buffer.from(login.auth, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon > 0) [username, password] = [decoded.slice(0, colon), decoded.slice(colon + 1)];
    }
    if (typeof username === "string" && username && typeof password === "string" && password) entries.push({ registry, username, password });
    else unusable.push(normalizeRegistryHost(registry));
  }
  const helpers = [
    ...(typeof config.credsStore === "string" && config.credsStore ? [config.credsStore] : []),
    ...Object.values(config.credHelpers ?? {}).filter((h): h is string => typeof h === "string"),
  ];
  return { entries, helpers: [...new Set(helpers)], unusable };
}

export interface LoginSources {
  /** REGISTRY_USER, REGISTRY_PASSWORD and REGISTRY_HOST. */
  user?: string;
  password?: string;
  host?: string;
  /** The Docker secret Shepherd read the password from; it wins over REGISTRY_PASSWORD, as in Shepherd. */
  passwordFile: string;
  registriesFile?: string;
  /** The docker CLI config (DOCKER_CONFIG, else ~/.docker) whose logins a service without shepherd.auth.config uses. */
  dockerConfigFile: string;
}

export interface RegistryLogins {
  /** What a service without shepherd.auth.config logs in with: REGISTRY_USER's login, then the docker config's. */
  entries: RegistryCredentialEntry[];
  /** REGISTRIES_FILE's logins, each for the services whose shepherd.auth.config names its id, as `docker --config <id>` did. */
  fileEntries: RegistriesFileEntry[];
}

/** Every login the server starts with, as Shepherd's docker CLI had them; `warn` hears what is left out and why. */
export function loadRegistryLogins(
  src: LoginSources,
  fs: { exists(path: string): boolean; read(path: string): string },
  warn: (fields: Record<string, unknown>, message: string) => void,
): RegistryLogins {
  const entries: RegistryCredentialEntry[] = [];
  const password = fs.exists(src.passwordFile) ? fs.read(src.passwordFile).trim() : src.password;
  if (src.user && password) entries.push({ registry: src.host ?? DOCKER_HUB, username: src.user, password });
  if (fs.exists(src.dockerConfigFile)) {
    try {
      const config = parseDockerConfig(fs.read(src.dockerConfigFile));
      entries.push(...config.entries);
      if (config.helpers.length) {
        warn(
          { file: src.dockerConfigFile, helpers: config.helpers },
          "the docker config names credential helpers, which the server does not run; give those logins in REGISTRIES_FILE or REGISTRY_USER",
        );
      }
      if (config.unusable.length)
        warn({ file: src.dockerConfigFile, registries: config.unusable }, "docker config logins without a username and password are not used");
    } catch (err) {
      warn({ file: src.dockerConfigFile, reason: (err as Error).message }, "the docker config cannot be read; its logins are not used");
    }
  }
  const file = src.registriesFile ? parseRegistriesFile(fs.read(src.registriesFile)) : { entries: [], skipped: [] };
  for (const { line, reason } of file.skipped)
    warn({ file: src.registriesFile, line, reason }, "REGISTRIES_FILE: an invalid line is skipped, as Shepherd skips it");
  return { entries, fileEntries: file.entries };
}
