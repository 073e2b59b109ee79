import type { UpdatePolicy } from "../domain/update-policy.js";

/**
 * Shepherd's UPDATE_OPTIONS and ROLLBACK_OPTIONS: flags it pasted unquoted
 * into `docker service update`. We take the `--update-*` / `--rollback-*`
 * flags (the spec settings) and lay them over the service's UpdateConfig and
 * RollbackConfig in the update request. Anything else fails the config, where
 * Shepherd found out at the first update, by the CLI refusing it.
 */
export interface UpdateOptions {
  updateConfig?: UpdatePolicy;
  rollbackConfig?: UpdatePolicy;
}

type Section = "update" | "rollback";

/** Go's time.ParseDuration, which the docker CLI uses for --*-delay and --*-monitor. */
const durationUnitsMs: Record<string, number> = { ns: 1e-6, us: 1e-3, "\u00b5s": 1e-3, "\u03bcs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
export function parseGoDuration(text: string): number | undefined {
  if (text === "0") return 0;
  const whole = /^(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+$/;
  if (!whole.test(text)) return undefined;
  let ms = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)/g)) ms += Number(m[1]) * durationUnitsMs[m[2]!]!;
  return ms;
}

/** Flags the CLI accepts that change nothing for us: we always wait for the rollout and print nothing. */
const harmless = new Set(["--detach", "-d", "--quiet", "-q"]);
const boolValues = new Set(["true", "false", "1", "0"]);

function parseValue(field: string, section: Section, value: string): Partial<UpdatePolicy> | string {
  switch (field) {
    case "parallelism":
      return /^\d+$/.test(value) ? { parallelism: Number(value) } : "expected a whole number (0 means all at once)";
    case "delay":
    case "monitor": {
      const ms = parseGoDuration(value);
      if (ms === undefined) return "expected a duration such as 10s, 1m30s or 500ms";
      return field === "delay" ? { delayMs: ms } : { monitorMs: ms };
    }
    case "failure-action": {
      const allowed = section === "update" ? ["pause", "continue", "rollback"] : ["pause", "continue"];
      return allowed.includes(value) ? { failureAction: value as UpdatePolicy["failureAction"] } : `expected ${allowed.join(", ")}`;
    }
    case "max-failure-ratio": {
      const ratio = Number(value);
      return value.trim() !== "" && Number.isFinite(ratio) && ratio >= 0 && ratio <= 1 ? { maxFailureRatio: ratio } : "expected a number from 0 to 1";
    }
    case "order":
      return value === "start-first" || value === "stop-first" ? { order: value } : "expected start-first or stop-first";
    default:
      return "unknown flag";
  }
}

/**
 * Parses one variable. `allowed` names the sections it may set: UPDATE_OPTIONS
 * may carry both (as `docker service update` does), ROLLBACK_OPTIONS only
 * `--rollback-*`. Throws with every problem in one message.
 */
export function parseUpdateOptions(text: string | undefined, allowed: Section[]): UpdateOptions {
  const result: Record<Section, UpdatePolicy> = { update: {}, rollback: {} };
  const problems: string[] = [];
  // Shepherd expanded the variable unquoted, so bash split it on whitespace.
  const words = (text ?? "").split(/\s+/).filter(Boolean);
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    const eq = word.indexOf("=");
    const flag = eq === -1 ? word : word.slice(0, eq);
    if (harmless.has(flag)) {
      // `--detach false` takes the next word only when it is a boolean, as pflag does for `--detach=false`-style flags.
      if (eq === -1 && (flag === "--detach" || flag === "-d") && boolValues.has(words[i + 1] ?? "")) i++;
      continue;
    }
    const m = /^--(update|rollback)-(.+)$/.exec(flag);
    if (!m || !allowed.includes(m[1] as Section)) {
      const expected = allowed.map((s) => `--${s}-*`).join(" and ");
      problems.push(`${flag}: not supported here (takes ${expected} flags: parallelism, delay, failure-action, monitor, max-failure-ratio, order)`);
      continue;
    }
    const value = eq === -1 ? words[++i] : word.slice(eq + 1);
    if (value === undefined) {
      problems.push(`${flag}: needs a value`);
      continue;
    }
    const parsed = parseValue(m[2]!, m[1] as Section, value);
    if (typeof parsed === "string") problems.push(`${flag} ${value}: ${parsed}`);
    else Object.assign(result[m[1] as Section], parsed);
  }
  if (problems.length) throw new Error(problems.join("; "));
  const nonEmpty = (p: UpdatePolicy) => (Object.keys(p).length ? p : undefined);
  return { updateConfig: nonEmpty(result.update), rollbackConfig: nonEmpty(result.rollback) };
}
