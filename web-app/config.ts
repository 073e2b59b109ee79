export interface WebAppConfig {
  port: number;
  host: string;
  /** Baked into the image by `--build-arg APP_VERSION=…`; "dev" when run from the source tree. */
  version: string;
  /** Must stay below the service's stop_grace_period, or swarm SIGKILLs the drain. */
  shutdownTimeoutMs: number;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

function wholeNumber(env: Record<string, string | undefined>, key: string, fallback: number, max: number): number {
  const raw = env[key]?.trim();
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) > max) throw new ConfigError(`${key}: expected a whole number from 0 to ${max}, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

/** Pure: reads only the given env object. */
export function loadConfig(env: Record<string, string | undefined>): WebAppConfig {
  return {
    port: wholeNumber(env, "PORT", 5000, 65535),
    host: env.HOST?.trim() || "0.0.0.0",
    version: env.APP_VERSION?.trim() || "dev",
    shutdownTimeoutMs: wholeNumber(env, "SHUTDOWN_TIMEOUT_MS", 8000, 600_000),
  };
}
