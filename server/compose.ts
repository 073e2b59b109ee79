import { hostname } from "node:os";
import type { Logger } from "pino";
import { createApp } from "./app.js";
import { createTokenService } from "./auth/tokens.js";
import type { Config } from "./config/config.js";
import { createIdGenerator } from "./domain/ids.js";
import { createCallbackNotifier } from "./notify/callback-notifier.js";
import { createDeployer } from "./engine/deployer.js";
import { withDeadline } from "./engine/deadline.js";
import { createUnmatchedPushes } from "./operations/match-unmatched.js";
import type { SwarmPort } from "./engine/swarm-port.js";
import { createMetrics } from "./metrics.js";
import { createAppriseNotifier } from "./notify/apprise-notifier.js";
import { createWebhookNotifier } from "./notify/webhook-notifier.js";
import { systemClock, type Clock } from "./domain/clock.js";
import { createImageAutoclean } from "./engine/image-autoclean.js";
import { createPoller, type PollerOptions } from "./poller/poller.js";
import type { Db, Sqlite } from "./store/database.js";
import { pingDatabase } from "./store/database.js";
import { createDeploymentHistory } from "./store/deployment-history.js";
import { createDeploymentStore } from "./store/deployment-store.js";
import { createServiceHolds } from "./store/service-holds.js";
import { createSourceStore } from "./store/source-store.js";
import { unpinnedRules } from "./http/oidc-proof.js";
import { createSourceSecrets } from "./auth/source-secrets.js";
import { createOidcVerifier } from "./auth/oidc-verifier.js";
import { createSourceOperations } from "./operations/manage-sources.js";
import { createRejectionLog } from "./http/rejection-log.js";
import { createSessions } from "./http/dashboard/sessions.js";
import { createSessionStore } from "./store/session-store.js";
import { createSealer } from "./auth/sealing.js";
import { createEventHub } from "./http/event-hub.js";
import { snapshotDatabase } from "./store/backup.js";
import { createOwnChanges } from "./engine/own-changes.js";
import { createDriftWatch } from "./operations/record-drift.js";
import { createServiceVersions } from "./store/service-versions.js";
import { createTagLookups } from "./engine/tag-lookups.js";
import { createServiceEvents } from "./engine/service-events.js";
import { createServiceIndex } from "./engine/service-index.js";
import { createTagListMemory } from "./store/tag-lists.js";

export interface ComposeOptions {
  config: Config;
  secret: string;
  db: Db;
  sqlite: Sqlite;
  swarm: SwarmPort;
  registry: PollerOptions["registry"];
  log: Logger;
  /** X-Registry-Auth for a registry, as the `shepherd.auth.config` id when a service names one. */
  registryAuthFor?: (registry: string, authConfig?: string) => string | undefined;
  /** The registry client of a REGISTRIES_FILE id (shepherd.auth.config), for the poller's lookups. */
  registryFor?: PollerOptions["registryFor"];
  /** REGISTRIES_FILE names logins: a deployment looks at its service's label first, to look its tag up with that login. */
  labelledLogins?: boolean;
  fetch?: typeof fetch;
  /** How long /readyz waits for the engine's ping (2 s); tests shorten it. */
  readyDeadlineMs?: number;
  /** How often a rollout is polled; tests with the fake swarm shorten it. */
  rolloutPollMs?: number;
  defaultMetrics?: boolean;
  /** The one clock of the server (timestamps, rollouts, timeouts, the poller); tests pass a fake one. */
  clock?: Clock;
  /** The event streams' bounds (http/event-hub.ts); tests make them small. */
  events?: Partial<EventStreamLimits>;
}

export interface EventStreamLimits {
  maxStreams: number;
  maxStreamsPerToken: number;
  bufferEvents: number;
  heartbeatMs: number;
  /** A write a client does not take within this long ends its stream (it stopped reading). */
  writeDeadlineMs: number;
}

/** 100 streams, 20 per token, of at most 1,000 waiting events each; a heartbeat every 15 s; a write taken within 30 s. */
export const defaultEventStreamLimits: EventStreamLimits = {
  maxStreams: 100,
  maxStreamsPerToken: 20,
  bufferEvents: 1000,
  heartbeatMs: 15_000,
  writeDeadlineMs: 30_000,
};

/**
 * Wires the server from its ports. main.ts calls it with the real engine and
 * registry; in-process tests call it with a real SQLite file and fakes.
 */
export function composeServer(opts: ComposeOptions) {
  const clock = opts.clock ?? systemClock;
  const now = () => clock.now();
  const store = createDeploymentStore(opts.db, { now, newId: createIdGenerator(now) });
  const holds = createServiceHolds(opts.db, now);
  const history = createDeploymentHistory(opts.db);
  const metrics = createMetrics({ defaultMetrics: opts.defaultMetrics });
  const { auth, registry, selection, rollout, poller: polling, notify } = opts.config;
  const tokens = createTokenService({ secret: opts.secret, previousSecret: auth.secretPrevious, dockerHubRegistry: registry.dockerHub, now });
  const callbacks = createCallbackNotifier({
    store,
    log: opts.log,
    allowedHosts: notify.callbackHosts,
    publicUrl: notify.publicUrl,
    fetch: opts.fetch,
  });
  const ownChanges = createOwnChanges();
  // One lookup per registry login and repo:tag under way, for the deployments and the poller alike.
  const tagLookups = createTagLookups();
  const deployer = createDeployer({
    swarm: opts.swarm,
    registry: opts.registry,
    registryFor: opts.labelledLogins ? opts.registryFor : undefined,
    store,
    holds,
    log: opts.log,
    metrics,
    timeoutMs: rollout.timeoutSeconds * 1000,
    rollbackOnFailure: rollout.rollbackOnFailure,
    registryAuthFor: opts.registryAuthFor ?? (() => undefined),
    pollUpdate: { updateConfig: rollout.updateConfig, rollbackConfig: rollout.rollbackConfig },
    pollMs: opts.rolloutPollMs,
    registryRetryMs: opts.config.registry.retryMs,
    approvalTtlMs: rollout.approvalTtlMs,
    clock,
    ownChanges,
    tagLookups,
    maxRollouts: rollout.maxRollouts,
  });
  const notifier = notify.appriseUrl
    ? createAppriseNotifier({
        url: notify.appriseUrl,
        hostname: notify.hostname ?? hostname(),
        timeZone: notify.tz,
        history,
        log: opts.log,
        metrics,
        now,
        fetch: opts.fetch,
      })
    : undefined;
  const webhook = notify.webhook && createWebhookNotifier({ ...notify.webhook, log: opts.log, metrics, now, fetch: opts.fetch });
  if (webhook) {
    deployer.onFinished((dep) => webhook.deploymentFinished(dep));
    deployer.onWaiting((dep) => webhook.deploymentWaiting(dep));
  }
  if (notifier) deployer.onWaiting((dep) => notifier.deploymentWaiting(dep));
  // What hears of a deployment's end: the Docker Hub callback, Apprise, image autoclean.
  deployer.onFinished((dep) => callbacks.deploymentFinished(dep));
  if (notifier) deployer.onFinished((dep) => notifier.deploymentFinished(dep));
  if (rollout.imageAutocleanLimit !== undefined) {
    deployer.onFinished(createImageAutoclean({ swarm: opts.swarm, log: opts.log, limit: rollout.imageAutocleanLimit }));
  }
  // Built always, started only by main.ts (DEPLOYER_POLL): in-process tests call runOnce() themselves.
  const poller = createPoller({
    swarm: opts.swarm,
    registry: opts.registry,
    registryFor: opts.registryFor,
    store,
    history,
    holds,
    deployer,
    metrics,
    log: opts.log,
    notifier,
    ...selection,
    sleepTimeMs: polling.sleepTimeMs,
    clock,
    tagLookups,
    tagLists: createTagListMemory(opts.db, now),
  });
  // One subscription to the engine's service events, for the index webhooks match against and the drift watcher.
  const serviceEvents = createServiceEvents(opts.swarm);
  // Started by main.ts (and the tests that use it); until it is fresh, webhooks list the engine's services themselves.
  const serviceIndex = createServiceIndex({
    swarm: opts.swarm,
    events: serviceEvents,
    clock,
    log: opts.log,
    resyncMs: rollout.serviceResyncMs,
    inspect: deployer.inspect,
  });
  const ingest = {
    swarm: opts.swarm,
    index: serviceIndex,
    store,
    deployer,
    callbacks,
    metrics,
    log: opts.log,
    ...selection,
  };
  const sources = createSourceStore(opts.db, now);
  for (const source of sources.list()) {
    const unpinned = source.revokedAt === null ? unpinnedRules(source) : undefined;
    if (unpinned) opts.log.warn({ source: source.id }, `oidc source accepts no token: ${unpinned}`);
  }
  const secrets = createSourceSecrets({ serverSecret: opts.secret, previousServerSecret: auth.secretPrevious });
  const rejections = createRejectionLog(now);
  const oidc = createOidcVerifier({
    timeoutMs: opts.config.oidc.jwksTimeoutMs,
    cooldownMs: opts.config.oidc.jwksCooldownMs,
    cacheMaxAgeMs: opts.config.oidc.jwksMaxAgeMs,
    now,
  });
  const sourceOperations = createSourceOperations({ sources, secrets, dockerHubRegistry: registry.dockerHub, now, newId: createIdGenerator(now) });
  // Started by main.ts, and by the in-process tests that look at drift.
  const drift = createDriftWatch({
    swarm: opts.swarm,
    events: serviceEvents,
    inspect: deployer.inspect,
    store,
    history,
    versions: createServiceVersions(opts.db),
    deployer,
    ownChanges,
    log: opts.log,
    clock,
  });
  // Started by main.ts; in-process tests call runOnce() themselves.
  const unmatched = createUnmatchedPushes({ ...ingest, clock });
  const limits = { ...defaultEventStreamLimits, ...opts.events };
  const hub = createEventHub({
    feed: store.feed,
    maxStreams: limits.maxStreams,
    maxStreamsPerToken: limits.maxStreamsPerToken,
    bufferEvents: limits.bufferEvents,
  });
  const sessions = createSessions({
    tokens,
    now,
    publicUrl: notify.publicUrl,
    store: createSessionStore(opts.db),
    sealer: createSealer({ serverSecret: opts.secret, previousServerSecret: auth.secretPrevious, purpose: "deployer dashboard sessions v1" }),
  });
  const app = createApp({
    tokens,
    sessions,
    store,
    api: {
      ...ingest,
      tokens,
      history,
      holds,
      sourceAdmin: { operations: sourceOperations, rejections },
      events: { hub, log: opts.log, heartbeatMs: limits.heartbeatMs, writeDeadlineMs: limits.writeDeadlineMs },
      sessions,
      backup: { snapshot: () => snapshotDatabase(opts.sqlite), clock },
    },
    ingest,
    metrics,
    log: opts.log,
    dockerHubRegistry: registry.dockerHub,
    sourceHooks: { sources, secrets, rejections, oidc, tokens, ingest, metrics, log: opts.log, now },
    readiness: {
      database: () => pingDatabase(opts.sqlite),
      // A hung engine must not hold the probe: 503 within 2 s.
      docker: () => withDeadline(opts.swarm.ping(), opts.readyDeadlineMs ?? 2000, "the Docker engine"),
    },
  });
  return {
    app,
    store,
    history,
    holds,
    deployer,
    tokens,
    metrics,
    poller,
    notifier,
    unmatched,
    drift,
    serviceIndex,
    tagLookups,
    sourceOperations,
    rejections,
    hub,
  };
}

export type ComposedServer = ReturnType<typeof composeServer>;
