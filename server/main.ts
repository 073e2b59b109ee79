import { serve } from "@hono/node-server";
import { existsSync, readFileSync } from "node:fs";
import { ConfigError, loadConfig, type Config } from "./config.js";
import { composeServer } from "./compose.js";
import { createDockerClient, createDockerodeSwarm } from "./engine/dockerode-swarm.js";
import { createLogger } from "./logger.js";
import { createCredentialStore, parseRegistriesFile, type RegistryCredentialEntry } from "./registry/credentials.js";
import { createRegistryClient } from "./registry/registry-client.js";
import { resolveSecret } from "./secret.js";
import { openDatabase } from "./store/database.js";

/** The composition root: the only place that reads the environment, opens the database and connects to Docker. */

const shepherdPasswordFile = "/run/secrets/shepherd_registry_password";

function exitWithConfigError(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

function loadCredentials(config: Config): RegistryCredentialEntry[] {
  const s = config.shepherd;
  const entries: RegistryCredentialEntry[] = [];
  const password = s.registryPassword ?? (existsSync(shepherdPasswordFile) ? readFileSync(shepherdPasswordFile, "utf8").trim() : undefined);
  if (s.registryUser && password) entries.push({ registry: s.registryHost ?? "docker.io", username: s.registryUser, password });
  if (s.registriesFile) entries.push(...parseRegistriesFile(readFileSync(s.registriesFile, "utf8")));
  return entries;
}

function registryAuthHeader(entry: RegistryCredentialEntry | undefined, registry: string): string | undefined {
  if (!entry) return undefined;
  const json = JSON.stringify({ username: entry.username, password: entry.password, serveraddress: registry });
  return Buffer.from(json).toString("base64url");
}

async function main() {
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) exitWithConfigError(err.message);
    throw err;
  }
  const log = createLogger(config.logLevel);

  let secret: string;
  let entries: RegistryCredentialEntry[];
  try {
    const resolved = resolveSecret(config, { generate: true });
    secret = resolved.secret;
    log.info({ source: resolved.source, path: resolved.path }, "signing secret loaded");
    entries = loadCredentials(config);
  } catch (err) {
    exitWithConfigError(`invalid configuration:\n  - ${(err as Error).message}`);
  }

  const database = openDatabase(config.dbPath);
  log.info({ db: config.dbPath }, "database open, migrations applied");

  const credentialsFor = createCredentialStore(entries);
  const registry = createRegistryClient({
    insecureRegistries: config.insecureRegistries,
    credentialsFor,
  });
  const swarm = createDockerodeSwarm(createDockerClient(config.dockerHost));
  const server = composeServer({
    config,
    secret,
    db: database.db,
    sqlite: database.sqlite,
    swarm,
    registry,
    log,
    defaultMetrics: true,
    registryAuthFor: config.shepherd.withRegistryAuth
      ? (host) => {
          const c = credentialsFor(host);
          return c ? registryAuthHeader({ registry: host, ...c }, host) : undefined;
        }
      : undefined,
  });

  try {
    await swarm.ping();
    log.info({ dockerHost: config.dockerHost ?? "default socket" }, "Docker engine reachable and a swarm manager");
  } catch (err) {
    log.error(
      { dockerHost: config.dockerHost ?? "default socket", reason: (err as Error).message },
      "Docker engine not reachable: webhooks are recorded but no service can be deployed; /readyz answers 503 until it is",
    );
  }
  const resumed = server.deployer.reconcile();
  if (resumed > 0) log.info({ count: resumed }, "resuming deployments interrupted by the last stop");

  const http = serve({ fetch: server.app.fetch, port: config.port, hostname: config.host }, (info) => {
    log.info({ host: config.host, port: info.port }, "deploy server listening");
  });

  const shutdown = (signal: string) => {
    log.info({ signal }, "shutting down; unfinished rollouts are followed again at the next start");
    server.deployer.stop();
    http.close(() => {
      database.close();
      process.exit(0);
    });
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
}

main().catch((err) => {
  process.stderr.write(`fatal: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
