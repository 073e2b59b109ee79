import { z } from "zod";
import { parseServiceFilter, type ServiceFilter } from "./domain/service-filter.js";
import type { UpdatePolicy } from "./engine/swarm-port.js";
import { parseUpdateOptions, type UpdateOptions } from "./poller/update-options.js";

/**
 * Every setting the server reads, resolved once from the environment. The
 * schema is the only place that knows variable names and defaults; the rest
 * of the code receives a typed Config and never reads process.env.
 */

const booleanText = z
  .string()
  .trim()
  .toLowerCase()
  .refine((v) => ["true", "false", "1", "0", "yes", "no", "on", "off"].includes(v), {
    message: "expected true/false/1/0/yes/no",
  })
  .transform((v) => ["true", "1", "yes", "on"].includes(v));

const flag = (fallback: boolean) => booleanText.optional().transform((v) => v ?? fallback);

const list = z
  .string()
  .optional()
  .transform((v) =>
    (v ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
  );

const hostPort = /^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9a-fA-F:]+\](:[0-9]{1,5})?$/;

const hostList = list.refine((hosts) => hosts.every((h) => hostPort.test(h)), {
  message: "expected a comma-separated list of host or host:port",
});

/** Shepherd's SLEEP_TIME follows `sleep`: a number with an optional s, m, h or d suffix. */
const durationUnits: Record<string, number> = { "": 1000, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
export function parseSleepTime(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)([smhd]?)$/.exec(text.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * durationUnits[m[2] ?? ""]!);
}

const sleepTime = z
  .string()
  .optional()
  .transform((v, ctx) => {
    const ms = parseSleepTime(v && v.trim() !== "" ? v : "5m");
    if (ms === undefined || ms <= 0) {
      ctx.addIssue({ code: "custom", message: "expected a duration such as 30s, 5m, 1h" });
      return z.NEVER;
    }
    return ms;
  });

const serviceFilter = z
  .string()
  .optional()
  .transform((v, ctx): ServiceFilter | undefined => {
    if (!v || v.trim() === "") return undefined;
    try {
      return parseServiceFilter(v);
    } catch (err) {
      ctx.addIssue({ code: "custom", message: (err as Error).message });
      return z.NEVER;
    }
  });

const positiveInt = (fallback: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .optional()
    .transform((v) => (v === undefined || v.trim() === "" ? String(fallback) : v.trim()))
    .pipe(z.string().regex(/^\d+$/, "expected a whole number"))
    .transform(Number)
    .pipe(z.number().int().min(1).max(max));

const optionalText = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === "" ? undefined : v));

const updateOptions = (sections: Array<"update" | "rollback">) =>
  z
    .string()
    .optional()
    .transform((v, ctx): UpdateOptions => {
      try {
        return parseUpdateOptions(v, sections);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: (err as Error).message });
        return z.NEVER;
      }
    });

/** An IANA zone, as TZ names it for `date`; Intl refuses unknown ones. */
const timeZone = optionalText.refine(
  (v) => {
    if (v === undefined) return true;
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: v });
      return true;
    } catch {
      return false;
    }
  },
  { message: "expected an IANA time zone such as Europe/Berlin or UTC" },
);

/** Shepherd handed the URL to curl, which takes `apprise:5000` as http; so do we. */
const appriseUrl = optionalText
  .transform((v) => (v === undefined || /^[a-z][a-z0-9+.-]*:\/\//i.test(v) ? v : `http://${v}`))
  .pipe(z.url({ protocol: /^https?$/, message: "expected an http(s) URL such as http://apprise:5000" }).optional());

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
  TIMEOUT: positiveInt(300),
  RUN_ONCE_AND_EXIT: flag(false),
  WITH_REGISTRY_AUTH: flag(false),
  REGISTRY_USER: optionalText,
  REGISTRY_PASSWORD: optionalText,
  REGISTRY_HOST: optionalText,
  REGISTRIES_FILE: optionalText,
  WITH_INSECURE_REGISTRY: flag(false),
  WITH_NO_RESOLVE_IMAGE: flag(false),
  IMAGE_AUTOCLEAN_LIMIT: optionalText.pipe(z.string().regex(/^\d+$/, "expected a whole number").optional()),
  APPRISE_SIDECAR_URL: appriseUrl,
  VERBOSE: flag(false),
  TZ: timeZone,
  HOSTNAME: optionalText,
  UPDATE_OPTIONS: updateOptions(["update", "rollback"]),
  ROLLBACK_OPTIONS: updateOptions(["rollback"]),
});

export interface Config {
  port: number;
  host: string;
  dbPath: string;
  secret?: string;
  secretFile?: string;
  secretPrevious?: string;
  dockerHost?: string;
  dockerHubRegistry: string;
  insecureRegistries: string[];
  callbackHosts: string[];
  poll: boolean;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  shepherd: {
    sleepTimeMs: number;
    filter?: ServiceFilter;
    ignoreList: string[];
    rollbackOnFailure: boolean;
    timeoutSeconds: number;
    runOnceAndExit: boolean;
    withRegistryAuth: boolean;
    registryUser?: string;
    registryPassword?: string;
    registryHost?: string;
    registriesFile?: string;
    withInsecureRegistry: boolean;
    withNoResolveImage: boolean;
    imageAutocleanLimit?: number;
    appriseUrl?: string;
    verbose: boolean;
    tz?: string;
    /** The name Apprise titles carry (`HOSTNAME`, else the machine's). */
    hostname?: string;
    /** UPDATE_OPTIONS' `--update-*` flags. */
    updateConfig?: UpdatePolicy;
    /** `--rollback-*` flags of UPDATE_OPTIONS and ROLLBACK_OPTIONS (the latter win). */
    rollbackConfig?: UpdatePolicy;
  };
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
  const rollbackConfig =
    e.UPDATE_OPTIONS.rollbackConfig || e.ROLLBACK_OPTIONS.rollbackConfig
      ? { ...e.UPDATE_OPTIONS.rollbackConfig, ...e.ROLLBACK_OPTIONS.rollbackConfig }
      : undefined;
  return {
    port: e.PORT,
    host: e.HOST,
    dbPath: e.DEPLOYER_DB,
    secret: e.DEPLOYER_SECRET,
    secretFile: e.DEPLOYER_SECRET_FILE,
    secretPrevious: e.DEPLOYER_SECRET_PREVIOUS,
    dockerHost: e.DOCKER_HOST,
    dockerHubRegistry: e.DEPLOYER_DOCKERHUB_REGISTRY,
    insecureRegistries: e.DEPLOYER_INSECURE_REGISTRIES,
    callbackHosts: e.DEPLOYER_CALLBACK_HOSTS,
    poll: e.DEPLOYER_POLL,
    // VERBOSE means more, never less: it lifts info (or quieter) to debug, and leaves trace and silent alone.
    logLevel: e.VERBOSE && ["fatal", "error", "warn", "info"].includes(e.LOG_LEVEL) ? "debug" : e.LOG_LEVEL,
    shepherd: {
      sleepTimeMs: e.SLEEP_TIME,
      filter: e.FILTER_SERVICES,
      ignoreList: e.IGNORELIST_SERVICES,
      rollbackOnFailure: e.ROLLBACK_ON_FAILURE,
      timeoutSeconds: e.TIMEOUT,
      runOnceAndExit: e.RUN_ONCE_AND_EXIT,
      withRegistryAuth: e.WITH_REGISTRY_AUTH,
      registryUser: e.REGISTRY_USER,
      registryPassword: e.REGISTRY_PASSWORD,
      registryHost: e.REGISTRY_HOST,
      registriesFile: e.REGISTRIES_FILE,
      withInsecureRegistry: e.WITH_INSECURE_REGISTRY,
      withNoResolveImage: e.WITH_NO_RESOLVE_IMAGE,
      imageAutocleanLimit: e.IMAGE_AUTOCLEAN_LIMIT === undefined ? undefined : Number(e.IMAGE_AUTOCLEAN_LIMIT),
      appriseUrl: e.APPRISE_SIDECAR_URL,
      verbose: e.VERBOSE,
      tz: e.TZ,
      hostname: e.HOSTNAME,
      updateConfig: e.UPDATE_OPTIONS.updateConfig,
      rollbackConfig,
    },
  };
}
