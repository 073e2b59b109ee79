import { homedir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import type { ServiceFilter } from "../domain/service-filter.js";
import type { UpdatePolicy } from "../domain/update-policy.js";
import {
  appriseUrl,
  publicUrl,
  booleanText,
  durationOrZero,
  flag,
  hostList,
  hostPort,
  optionalText,
  positiveDuration,
  positiveInt,
  serviceFilter,
  sleepTime,
  timeZone,
  updateOptions,
} from "./fields.js";

/**
 * Every setting the server reads, resolved once from the environment. The
 * schema is the only place that knows variable names and defaults; the rest
 * of the code receives a typed Config, one section per part of the server
 * (compose.ts hands each part its own), and never reads process.env.
 */

const envSchema = z.object({
  PORT: positiveInt(8080, 65535),
  HOST: z
    .string()
    .optional()
    .transform((v) => v || "0.0.0.0"),
  DEPLOYER_DB: z
    .string()
    .optional()
    .transform((v) => v || "./data/deployer.db"),
  DEPLOYER_SECRET: optionalText.pipe(z.string().min(32, "must be at least 32 bytes").optional()),
  DEPLOYER_SECRET_FILE: optionalText,
  DEPLOYER_SECRET_PREVIOUS: optionalText.pipe(z.string().min(32, "must be at least 32 bytes").optional()),
  DOCKER_HOST: optionalText,
  DEPLOYER_DOCKERHUB_REGISTRY: z
    .string()
    .optional()
    .transform((v) => v || "docker.io")
    .pipe(z.string().regex(hostPort, "expected a registry host or host:port")),
  DEPLOYER_INSECURE_REGISTRIES: hostList,
  DEPLOYER_CALLBACK_HOSTS: hostList.transform((v) => (v.length ? v : ["registry.hub.docker.com"])),
  DEPLOYER_POLL: flag(true),
  DEPLOYER_DRIFT: flag(true),
  DEPLOYER_REGISTRY_RETRY: durationOrZero("5m"),
  DEPLOYER_APPROVAL_TTL: durationOrZero("24h").pipe(z.number().min(1, "expected a duration above 0, such as 24h")),
  DEPLOYER_OIDC_JWKS_TIMEOUT: durationOrZero("5s").pipe(z.number().min(1, "expected a duration above 0, such as 5s")),
  /** Rollouts under way at once; the others wait, queued, first come first served. */
  DEPLOYER_MAX_ROLLOUTS: positiveInt(25),
  /** How often the service index (engine/service-index.ts) lists every service again, besides following the events. */
  DEPLOYER_SERVICE_RESYNC: durationOrZero("5m"),
  DEPLOYER_OIDC_JWKS_COOLDOWN: durationOrZero("30s"),
  DEPLOYER_OIDC_JWKS_MAX_AGE: durationOrZero("10m"),
  LOG_LEVEL: z
    .string()
    .optional()
    .transform((v) => v || "info")
    .pipe(z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"])),

  SLEEP_TIME: sleepTime,
  FILTER_SERVICES: serviceFilter,
  IGNORELIST_SERVICES: z
    .string()
    .optional()
    .transform((v) => (v ?? "").split(/[\s,]+/).filter(Boolean)),
  ROLLBACK_ON_FAILURE: flag(false),
  TIMEOUT: positiveDuration("300"),
  RUN_ONCE_AND_EXIT: flag(false),
  // Unset, it follows REGISTRY_USER, as Shepherd's does: a login given is a login the nodes pull with.
  WITH_REGISTRY_AUTH: booleanText.optional(),
  REGISTRY_USER: optionalText,
  REGISTRY_PASSWORD: optionalText,
  REGISTRY_HOST: optionalText,
  REGISTRIES_FILE: optionalText,
  /** The docker CLI's own: the directory of config.json, whose logins a mounted ~/.docker/config.json gave Shepherd. */
  DOCKER_CONFIG: optionalText,
  HOME: optionalText,
  WITH_INSECURE_REGISTRY: flag(false),
  WITH_NO_RESOLVE_IMAGE: flag(false),
  IMAGE_AUTOCLEAN_LIMIT: optionalText.pipe(z.string().regex(/^\d+$/, "expected a whole number").optional()),
  APPRISE_SIDECAR_URL: appriseUrl,
  DEPLOYER_NOTIFY_WEBHOOK_URL: appriseUrl,
  DEPLOYER_NOTIFY_WEBHOOK_SECRET: z.string().optional(),
  DEPLOYER_PUBLIC_URL: publicUrl,
  VERBOSE: flag(false),
  TZ: timeZone,
  HOSTNAME: optionalText,
  UPDATE_OPTIONS: updateOptions(["update", "rollback"]),
  ROLLBACK_OPTIONS: updateOptions(["rollback"]),
});

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

export interface Config {
  http: { port: number; host: string };
  store: { dbPath: string };
  auth: { secret?: string; secretFile?: string; secretPrevious?: string };
  /** DOCKER_HOST; unset means docker-modem's own defaults. */
  docker: { host?: string };
  registry: {
    /** Where Docker Hub webhooks' repositories live (DEPLOYER_DOCKERHUB_REGISTRY). */
    dockerHub: string;
    insecure: string[];
    /** WITH_INSECURE_REGISTRY: a registry unreachable over https is tried over http. */
    fallbackToHttp: boolean;
    /** WITH_REGISTRY_AUTH (by default, whether REGISTRY_USER is set): pass the registry login to the nodes with each update. */
    passAuthToNodes: boolean;
    user?: string;
    password?: string;
    host?: string;
    registriesFile?: string;
    /** The docker CLI config whose `auths` services without shepherd.auth.config log in with: $DOCKER_CONFIG/config.json, else ~/.docker/config.json. */
    dockerConfigFile: string;
    /** WITH_NO_RESOLVE_IMAGE: accepted for Shepherd's sake; platform constraints are never rewritten anyway. */
    noResolveImage: boolean;
    /** DEPLOYER_REGISTRY_RETRY: how long a deployment keeps trying a registry that does not answer before it fails (0: fail at once). */
    retryMs: number;
  };
  /** How the OIDC sources' issuer keys (JWKS) are fetched: per fetch, between refetches for an unknown key id, and how long they are kept. */
  oidc: { jwksTimeoutMs: number; jwksCooldownMs: number; jwksMaxAgeMs: number };
  /** Which services the server manages, for webhooks, the API and the poller alike. */
  selection: { filter?: ServiceFilter; ignoreList: string[] };
  rollout: {
    timeoutSeconds: number;
    rollbackOnFailure: boolean;
    /** UPDATE_OPTIONS' `--update-*` flags, laid over the spec by the poller's deploys. */
    updateConfig?: UpdatePolicy;
    /** `--rollback-*` flags of UPDATE_OPTIONS and ROLLBACK_OPTIONS (the latter win). */
    rollbackConfig?: UpdatePolicy;
    /** IMAGE_AUTOCLEAN_LIMIT: keep this many images of a repository after each deployment. */
    imageAutocleanLimit?: number;
    /** DEPLOYER_APPROVAL_TTL: how long a deployment waits for approval (deployer.approve=required) before it is rejected. */
    approvalTtlMs: number;
    /** DEPLOYER_MAX_ROLLOUTS: rollouts under way at once; the others wait, queued, in the order they came. */
    maxRollouts: number;
    /** DEPLOYER_SERVICE_RESYNC: how often the service index lists every service again (0: only on start and reconnection). */
    serviceResyncMs: number;
  };
  poller: { enabled: boolean; sleepTimeMs: number; runOnceAndExit: boolean };
  /** DEPLOYER_DRIFT: record changes made to services outside the server (trigger `external`). */
  drift: { enabled: boolean };
  notify: {
    /** Hosts a Docker Hub `callback_url` may name. */
    callbackHosts: string[];
    appriseUrl?: string;
    /** DEPLOYER_NOTIFY_WEBHOOK_URL and _SECRET: a JSON webhook told of every final status and wait, HMAC-signed. */
    webhook?: { url: string; secret: string };
    tz?: string;
    /** The name Apprise titles carry (`HOSTNAME`, else the machine's). */
    hostname?: string;
    /** DEPLOYER_PUBLIC_URL, without a trailing slash: links to a deployment's page (a Docker Hub callback's target_url). */
    publicUrl?: string;
  };
  log: { level: LogLevel };
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  }
}

/** Pure: reads only the given env object. Throws ConfigError listing every bad variable. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new ConfigError([...new Set(problems)]);
  }
  const e = parsed.data;
  if (e.DEPLOYER_SECRET && e.DEPLOYER_SECRET_FILE) {
    throw new ConfigError(["DEPLOYER_SECRET_FILE: set either DEPLOYER_SECRET or DEPLOYER_SECRET_FILE, not both"]);
  }
  if (e.RUN_ONCE_AND_EXIT && !e.DEPLOYER_POLL) {
    throw new ConfigError(["RUN_ONCE_AND_EXIT: runs one poll cycle, so it needs DEPLOYER_POLL on"]);
  }
  if (e.DEPLOYER_NOTIFY_WEBHOOK_URL && (e.DEPLOYER_NOTIFY_WEBHOOK_SECRET ?? "").length < 16) {
    throw new ConfigError(["DEPLOYER_NOTIFY_WEBHOOK_SECRET: the webhook's notifications are signed with it; give one of at least 16 characters"]);
  }
  const rollbackConfig =
    e.UPDATE_OPTIONS.rollbackConfig || e.ROLLBACK_OPTIONS.rollbackConfig
      ? { ...e.UPDATE_OPTIONS.rollbackConfig, ...e.ROLLBACK_OPTIONS.rollbackConfig }
      : undefined;
  return {
    http: { port: e.PORT, host: e.HOST },
    store: { dbPath: e.DEPLOYER_DB },
    auth: { secret: e.DEPLOYER_SECRET, secretFile: e.DEPLOYER_SECRET_FILE, secretPrevious: e.DEPLOYER_SECRET_PREVIOUS },
    docker: { host: e.DOCKER_HOST },
    registry: {
      dockerHub: e.DEPLOYER_DOCKERHUB_REGISTRY,
      retryMs: e.DEPLOYER_REGISTRY_RETRY,
      insecure: e.DEPLOYER_INSECURE_REGISTRIES,
      fallbackToHttp: e.WITH_INSECURE_REGISTRY,
      passAuthToNodes: e.WITH_REGISTRY_AUTH ?? e.REGISTRY_USER !== undefined,
      user: e.REGISTRY_USER,
      password: e.REGISTRY_PASSWORD,
      host: e.REGISTRY_HOST,
      registriesFile: e.REGISTRIES_FILE,
      dockerConfigFile: join(e.DOCKER_CONFIG ?? join(e.HOME ?? homedir(), ".docker"), "config.json"),
      noResolveImage: e.WITH_NO_RESOLVE_IMAGE,
    },
    oidc: { jwksTimeoutMs: e.DEPLOYER_OIDC_JWKS_TIMEOUT, jwksCooldownMs: e.DEPLOYER_OIDC_JWKS_COOLDOWN, jwksMaxAgeMs: e.DEPLOYER_OIDC_JWKS_MAX_AGE },
    selection: { filter: e.FILTER_SERVICES, ignoreList: e.IGNORELIST_SERVICES },
    rollout: {
      timeoutSeconds: e.TIMEOUT / 1000,
      rollbackOnFailure: e.ROLLBACK_ON_FAILURE,
      updateConfig: e.UPDATE_OPTIONS.updateConfig,
      rollbackConfig,
      imageAutocleanLimit: e.IMAGE_AUTOCLEAN_LIMIT === undefined ? undefined : Number(e.IMAGE_AUTOCLEAN_LIMIT),
      approvalTtlMs: e.DEPLOYER_APPROVAL_TTL,
      maxRollouts: e.DEPLOYER_MAX_ROLLOUTS,
      serviceResyncMs: e.DEPLOYER_SERVICE_RESYNC,
    },
    poller: { enabled: e.DEPLOYER_POLL, sleepTimeMs: e.SLEEP_TIME, runOnceAndExit: e.RUN_ONCE_AND_EXIT },
    drift: { enabled: e.DEPLOYER_DRIFT },
    notify: {
      callbackHosts: e.DEPLOYER_CALLBACK_HOSTS,
      appriseUrl: e.APPRISE_SIDECAR_URL,
      webhook: e.DEPLOYER_NOTIFY_WEBHOOK_URL ? { url: e.DEPLOYER_NOTIFY_WEBHOOK_URL, secret: e.DEPLOYER_NOTIFY_WEBHOOK_SECRET! } : undefined,
      tz: e.TZ,
      hostname: e.HOSTNAME,
      publicUrl: e.DEPLOYER_PUBLIC_URL,
    },
    // VERBOSE means more, never less: it lifts info (or quieter) to debug, and leaves trace and silent alone.
    log: { level: e.VERBOSE && ["fatal", "error", "warn", "info"].includes(e.LOG_LEVEL) ? "debug" : e.LOG_LEVEL },
  };
}
