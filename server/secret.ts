import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Config } from "./config/config.js";

export interface ResolvedSecret {
  secret: string;
  /** Where it came from, for one log line at start (never the value). */
  source: "DEPLOYER_SECRET" | "DEPLOYER_SECRET_FILE" | "generated" | "data-dir";
  path?: string;
}

/** The generated secret lives beside the database, so `./data/secret` with the defaults. */
export function generatedSecretPath(config: Pick<Config, "store">): string {
  return join(dirname(config.store.dbPath), "secret");
}

/**
 * The HS256 key: DEPLOYER_SECRET, else DEPLOYER_SECRET_FILE, else the one
 * generated on first use (mode 0600), so that `npm start` works with no
 * configuration and tokens survive restarts. The server and the token CLI
 * generate into the same file, so either may run first; `generate: false`
 * is for callers that must only read an existing key.
 */
export function resolveSecret(config: Pick<Config, "store" | "auth">, opts: { generate: boolean }): ResolvedSecret {
  const { secret: configured, secretFile } = config.auth;
  if (configured) return { secret: configured, source: "DEPLOYER_SECRET" };
  if (secretFile) {
    const secret = readFileSync(secretFile, "utf8").trim();
    if (Buffer.byteLength(secret) < 32) throw new Error(`DEPLOYER_SECRET_FILE: the secret in ${secretFile} is shorter than 32 bytes`);
    return { secret, source: "DEPLOYER_SECRET_FILE", path: secretFile };
  }
  const path = generatedSecretPath(config);
  if (existsSync(path)) {
    const secret = readFileSync(path, "utf8").trim();
    if (Buffer.byteLength(secret) < 32) throw new Error(`the generated secret in ${path} is shorter than 32 bytes; delete it to make a new one`);
    return { secret, source: "data-dir", path };
  }
  if (!opts.generate) {
    throw new Error(`no secret configured and none generated yet at ${path}: start the server once, or set DEPLOYER_SECRET`);
  }
  mkdirSync(dirname(path), { recursive: true });
  const secret = randomBytes(48).toString("base64url");
  try {
    writeFileSync(path, `${secret}\n`, { mode: 0o600, flag: "wx" });
  } catch (err) {
    // Another process (the server or the token CLI) generated it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return resolveSecret(config, { generate: false });
    throw err;
  }
  chmodSync(path, 0o600);
  return { secret, source: "generated", path };
}
