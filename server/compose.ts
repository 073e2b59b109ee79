import type Database from "better-sqlite3";
import type { Logger } from "pino";
import { createApp } from "./app.js";
import { createTokenService } from "./auth/tokens.js";
import type { Config } from "./config.js";
import { createIdGenerator } from "./domain/ids.js";
import { createCallbackNotifier } from "./engine/callback-notifier.js";
import { createDeployer } from "./engine/deployer.js";
import type { SwarmPort } from "./engine/swarm-port.js";
import { createMetrics } from "./metrics.js";
import type { RegistryPort } from "./registry/registry-port.js";
import type { Db } from "./store/database.js";
import { pingDatabase } from "./store/database.js";
import { createDeploymentHistory } from "./store/deployment-history.js";
import { createDeploymentStore } from "./store/deployment-store.js";
import { createServiceHolds } from "./store/service-holds.js";

export interface ComposeOptions {
  config: Config;
  secret: string;
  db: Db;
  sqlite: Database.Database;
  swarm: SwarmPort;
  registry: RegistryPort;
  log: Logger;
  registryAuthFor?: (registry: string) => string | undefined;
  fetch?: typeof fetch;
  now?: () => number;
  /** How often a rollout is polled; tests with the fake swarm shorten it. */
  rolloutPollMs?: number;
  defaultMetrics?: boolean;
}

/**
 * Wires the server from its ports. main.ts calls it with the real engine and
 * registry; in-process tests call it with a real SQLite file and fakes.
 */
export function composeServer(opts: ComposeOptions) {
  const now = opts.now ?? Date.now;
  const store = createDeploymentStore(opts.db, { now, newId: createIdGenerator(now) });
  const holds = createServiceHolds(opts.db, now);
  const history = createDeploymentHistory(opts.db);
  const metrics = createMetrics({ defaultMetrics: opts.defaultMetrics });
  const tokens = createTokenService({
    secret: opts.secret,
    previousSecret: opts.config.secretPrevious,
    dockerHubRegistry: opts.config.dockerHubRegistry,
  });
  const callbacks = createCallbackNotifier({ store, log: opts.log, allowedHosts: opts.config.callbackHosts, fetch: opts.fetch });
  const deployer = createDeployer({
    swarm: opts.swarm,
    registry: opts.registry,
    store,
    holds,
    log: opts.log,
    metrics,
    callbacks,
    timeoutMs: opts.config.shepherd.timeoutSeconds * 1000,
    rollbackOnFailure: opts.config.shepherd.rollbackOnFailure,
    registryAuthFor: opts.registryAuthFor ?? (() => undefined),
    pollMs: opts.rolloutPollMs,
    now,
  });
  const ingest = {
    swarm: opts.swarm,
    store,
    deployer,
    callbacks,
    log: opts.log,
    filter: opts.config.shepherd.filter,
    ignoreList: opts.config.shepherd.ignoreList,
  };
  const app = createApp({
    tokens,
    store,
    api: { ...ingest, tokens, history, holds },
    ingest,
    metrics,
    log: opts.log,
    dockerHubRegistry: opts.config.dockerHubRegistry,
    readiness: {
      database: () => pingDatabase(opts.sqlite),
      docker: () => opts.swarm.ping(),
    },
  });
  return { app, store, history, holds, deployer, tokens, metrics };
}

export type ComposedServer = ReturnType<typeof composeServer>;
