import { serve } from "@hono/node-server";
import { existsSync, readFileSync } from "node:fs";
import type { Server as HttpServer } from "node:http";
import { ConfigError, loadConfig, type Config } from "./config/config.js";
import { composeServer } from "./compose.js";
import { createDockerClient } from "./engine/docker-client.js";
import { createDockerodeSwarm } from "./engine/dockerode-swarm.js";
import { answerClientErrorsInEnvelope } from "./http/client-errors.js";
import { createLogger } from "./logger.js";
import { loadRegistryLogins, type RegistryLogins } from "./registry/credentials.js";
import { createRegistryAccess } from "./registry/registry-access.js";
import { resolveSecret } from "./secret.js";
import { openDatabase } from "./store/database.js";

/** The composition root: the only place that reads the environment, opens the database and connects to Docker. */

const shepherdPasswordFile = "/run/secrets/shepherd_registry_password";

function exitWithConfigError(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

function loadCredentials(config: Config, log: ReturnType<typeof createLogger>): RegistryLogins {
  const s = config.registry;
  return loadRegistryLogins(
    { ...s, passwordFile: shepherdPasswordFile, dockerConfigFile: s.dockerConfigFile },
    { exists: existsSync, read: (path) => readFileSync(path, "utf8") },
    (fields, message) => log.warn(fields, message),
  );
}

function logShepherdSettings(config: Config, log: ReturnType<typeof createLogger>): void {
  if (!config.poller.enabled) {
    log.info("polling fallback off (DEPLOYER_POLL=false): only webhooks and the API deploy");
    return;
  }
  log.info(
    {
      sleepTimeMs: config.poller.sleepTimeMs,
      filter: config.selection.filter,
      ignoreList: config.selection.ignoreList,
      // Not Intl.DateTimeFormat().resolvedOptions(): loading ICU time zone data for one log field costs ~8 MB of RSS.
      timeZone: config.notify.tz ?? process.env.TZ ?? "system default",
      updateConfig: config.rollout.updateConfig,
      rollbackConfig: config.rollout.rollbackConfig,
      apprise: Boolean(config.notify.appriseUrl),
      imageAutocleanLimit: config.rollout.imageAutocleanLimit,
    },
    "polling fallback on (Shepherd-compatible)",
  );
  if (config.registry.noResolveImage) {
    log.info(
      "WITH_NO_RESOLVE_IMAGE: the service's platform constraints are never rewritten; the digest is still pinned from our own registry lookup",
    );
  }
  if (config.registry.fallbackToHttp) log.info("WITH_INSECURE_REGISTRY: registries that answer https in plain http are asked over plain http");
}

async function main() {
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) exitWithConfigError(err.message);
    throw err;
  }
  const log = createLogger(config.log.level);

  let secret: string;
  let credentials: ReturnType<typeof loadCredentials>;
  try {
    const resolved = resolveSecret(config, { generate: true });
    secret = resolved.secret;
    log.info({ source: resolved.source, path: resolved.path }, "signing secret loaded");
    credentials = loadCredentials(config, log);
  } catch (err) {
    exitWithConfigError(`invalid configuration:\n  - ${(err as Error).message}`);
  }

  const database = openDatabase(config.store.dbPath);
  log.info({ db: config.store.dbPath }, "database open, migrations applied");

  const access = createRegistryAccess({
    ...credentials,
    insecureRegistries: config.registry.insecure,
    fallbackToHttp: config.registry.fallbackToHttp,
    withRegistryAuth: config.registry.passAuthToNodes,
    log,
  });
  const swarm = createDockerodeSwarm(createDockerClient(config.docker.host));
  const server = composeServer({
    config,
    secret,
    db: database.db,
    sqlite: database.sqlite,
    swarm,
    registry: access.registry,
    registryFor: access.registryFor,
    labelledLogins: credentials.fileEntries.length > 0,
    registryAuthFor: access.registryAuthFor,
    log,
    defaultMetrics: true,
  });

  try {
    await swarm.ping();
    log.info({ dockerHost: config.docker.host ?? "default socket" }, "Docker engine reachable and a swarm manager");
  } catch (err) {
    log.error(
      { dockerHost: config.docker.host ?? "default socket", reason: (err as Error).message },
      "Docker engine not reachable: webhooks are recorded but no service can be deployed; /readyz answers 503 until it is",
    );
  }
  const resumed = server.deployer.reconcile();
  if (resumed > 0) log.info({ count: resumed }, "resuming deployments interrupted by the last stop");
  logShepherdSettings(config, log);

  if (config.poller.runOnceAndExit) {
    // Shepherd's one-shot mode (cron, swarm-cronjob): no HTTP listener, one cycle, its rollouts to their end, exit 0.
    const cycle = await server.poller.runOnce();
    await server.deployer.idle();
    await server.notifier?.flush();
    log.info({ deployments: cycle.deployments.length }, "RUN_ONCE_AND_EXIT: the cycle and its deployments are done; exiting");
    database.close();
    process.exit(0);
  }
  // Pushes recorded while the engine did not answer are matched and deployed once it does, poller or not.
  server.unmatched.start();
  if (config.poller.enabled) server.poller.start();
  // Webhooks find their services in the index kept from the event stream.
  server.serviceIndex.start();
  // Changes made while the server was down are recorded once the event stream connects.
  if (config.drift.enabled) server.drift.start();
  else log.info("DEPLOYER_DRIFT=false: changes made to services outside the server are not recorded");

  const http = serve({ fetch: server.app.fetch, port: config.http.port, hostname: config.http.host }, (info) => {
    log.info({ host: config.http.host, port: info.port }, "deploy server listening");
  });
  answerClientErrorsInEnvelope(http as HttpServer, log); // serve() made an HTTP/1 server: no http2 option given

  const shutdown = (signal: string) => {
    log.info({ signal }, "shutting down; unfinished rollouts are followed again at the next start");
    setTimeout(() => process.exit(0), 5000).unref();
    server.deployer.stop();
    // No new requests; the database closes once the answers under way and the loops' work under way (a poll cycle,
    // a drift recording, a push being matched) are done, so none of them is cut off halfway. At most 5 s.
    const answered = new Promise<void>((resolve) => http.close(() => resolve()));
    const loops = [server.poller.stop(), server.unmatched.stop(), server.drift.stop(), server.serviceIndex.stop()];
    void Promise.allSettled([answered, ...loops]).then(() => {
      database.close();
      process.exit(0);
    });
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
}

main().catch((err) => {
  process.stderr.write(`fatal: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
