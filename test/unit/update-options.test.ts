import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../server/config/config.js";
import { parseGoDuration, parseUpdateOptions } from "../../server/config/update-options.js";

const base = { DEPLOYER_SECRET: "x".repeat(32) };

function configProblems(env: Record<string, string>): string[] {
  try {
    loadConfig({ ...base, ...env });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe("UPDATE_OPTIONS and ROLLBACK_OPTIONS", () => {
  it("maps every --update-* flag, with = or a separate value, onto UpdateConfig fields", () => {
    const parsed = parseUpdateOptions(
      "--update-parallelism 2 --update-delay=10s --update-failure-action rollback --update-monitor 1m30s --update-max-failure-ratio=0.25 --update-order start-first",
      ["update", "rollback"],
    );
    expect(parsed).toEqual({
      updateConfig: { parallelism: 2, delayMs: 10_000, failureAction: "rollback", monitorMs: 90_000, maxFailureRatio: 0.25, order: "start-first" },
      rollbackConfig: undefined,
    });
  });

  it("takes --rollback-* flags in both variables, and only those in ROLLBACK_OPTIONS", () => {
    expect(parseUpdateOptions("--rollback-parallelism 0 --rollback-order=stop-first", ["rollback"])).toEqual({
      updateConfig: undefined,
      rollbackConfig: { parallelism: 0, order: "stop-first" },
    });
    expect(() => parseUpdateOptions("--update-parallelism 2", ["rollback"])).toThrow(
      /--update-parallelism: not supported here \(takes --rollback-\* flags/,
    );
  });

  it("ignores --detach and --quiet, which change nothing when the rollout is followed anyway", () => {
    expect(parseUpdateOptions("--detach=false --quiet -d true --update-delay 1s", ["update"])).toEqual({
      updateConfig: { delayMs: 1000 },
      rollbackConfig: undefined,
    });
  });

  it("refuses other flags and bad values, naming each", () => {
    expect(() =>
      parseUpdateOptions("--force --update-order sideways --update-delay 10 --rollback-failure-action rollback --update-max-failure-ratio 2", [
        "update",
        "rollback",
      ]),
    ).toThrow(
      /--force: not supported.*--update-order sideways: expected start-first or stop-first.*--update-delay 10: expected a duration.*--rollback-failure-action rollback: expected pause, continue.*--update-max-failure-ratio 2: expected a number from 0 to 1/,
    );
    expect(() => parseUpdateOptions("--update-parallelism", ["update"])).toThrow(/needs a value/);
  });

  it("reads Go durations as the docker CLI does", () => {
    expect(parseGoDuration("0")).toBe(0);
    expect(parseGoDuration("1h2m3s")).toBe(3_723_000);
    expect(parseGoDuration("1.5s")).toBe(1500);
    expect(parseGoDuration("250ms")).toBe(250);
    expect(parseGoDuration("10")).toBeUndefined();
    expect(parseGoDuration("-1s")).toBeUndefined();
  });

  it("fails the configuration (exit 2) on a bad flag, naming the variable", () => {
    const problems = configProblems({ UPDATE_OPTIONS: "--update-parallelism two", ROLLBACK_OPTIONS: "--force" });
    expect(problems.join("\n")).toMatch(/UPDATE_OPTIONS: --update-parallelism two: expected a whole number/);
    expect(problems.join("\n")).toMatch(/ROLLBACK_OPTIONS: --force: not supported/);
  });

  it("lets ROLLBACK_OPTIONS win over the --rollback-* flags of UPDATE_OPTIONS", () => {
    const config = loadConfig({
      ...base,
      UPDATE_OPTIONS: "--update-delay 2s --rollback-parallelism 3 --rollback-delay 1s",
      ROLLBACK_OPTIONS: "--rollback-parallelism 1",
    });
    expect(config.rollout.updateConfig).toEqual({ delayMs: 2000 });
    expect(config.rollout.rollbackConfig).toEqual({ parallelism: 1, delayMs: 1000 });
  });
});

describe("the other Shepherd settings", () => {
  it("takes an Apprise URL without a scheme the way curl does", () => {
    expect(loadConfig({ ...base, APPRISE_SIDECAR_URL: "apprise-microservice:5000" }).notify.appriseUrl).toBe("http://apprise-microservice:5000");
    expect(configProblems({ APPRISE_SIDECAR_URL: "ftp://apprise" }).join()).toMatch(/APPRISE_SIDECAR_URL/);
  });

  it("refuses an unknown time zone", () => {
    expect(configProblems({ TZ: "Mars/Olympus" }).join()).toMatch(/TZ: expected an IANA time zone/);
    expect(loadConfig({ ...base, TZ: "Europe/Berlin" }).notify.tz).toBe("Europe/Berlin");
  });

  it("turns VERBOSE=true into debug logging and VERBOSE=false into nothing (Shepherd had them inverted)", () => {
    expect(loadConfig({ ...base, VERBOSE: "true" }).log.level).toBe("debug");
    expect(loadConfig({ ...base, VERBOSE: "true", LOG_LEVEL: "trace" }).log.level).toBe("trace");
    expect(loadConfig({ ...base, VERBOSE: "false" }).log.level).toBe("info");
  });

  it("keeps false false, unlike Shepherd, where any value turned a flag on", () => {
    const config = loadConfig({
      ...base,
      WITH_INSECURE_REGISTRY: "false",
      WITH_NO_RESOLVE_IMAGE: "false",
      RUN_ONCE_AND_EXIT: "false",
      ROLLBACK_ON_FAILURE: "false",
    });
    expect(config.registry).toMatchObject({ fallbackToHttp: false, noResolveImage: false });
    expect(config.poller.runOnceAndExit).toBe(false);
    expect(config.rollout.rollbackOnFailure).toBe(false);
  });

  it("passes the login to the nodes when REGISTRY_USER is set, as Shepherd does, unless WITH_REGISTRY_AUTH says otherwise", () => {
    const login = { REGISTRY_USER: "ci", REGISTRY_PASSWORD: "a-password" };
    expect(loadConfig({ ...base }).registry.passAuthToNodes).toBe(false);
    expect(loadConfig({ ...base, ...login }).registry.passAuthToNodes).toBe(true);
    expect(loadConfig({ ...base, ...login, WITH_REGISTRY_AUTH: "false" }).registry.passAuthToNodes).toBe(false);
    expect(loadConfig({ ...base, WITH_REGISTRY_AUTH: "true" }).registry.passAuthToNodes).toBe(true);
  });

  it("refuses RUN_ONCE_AND_EXIT with the poller off", () => {
    expect(configProblems({ RUN_ONCE_AND_EXIT: "true", DEPLOYER_POLL: "false" }).join()).toMatch(/RUN_ONCE_AND_EXIT: .*DEPLOYER_POLL/);
  });
});

describe("DEPLOYER_REGISTRY_RETRY", () => {
  it("is a duration, 5 minutes by default, 0 for none, and anything else is named", () => {
    expect(loadConfig(base).registry.retryMs).toBe(300_000);
    expect(loadConfig({ ...base, DEPLOYER_REGISTRY_RETRY: "30s" }).registry.retryMs).toBe(30_000);
    expect(loadConfig({ ...base, DEPLOYER_REGISTRY_RETRY: "0" }).registry.retryMs).toBe(0);
    expect(configProblems({ DEPLOYER_REGISTRY_RETRY: "soon" }).join("\n")).toMatch(/DEPLOYER_REGISTRY_RETRY.*duration/);
  });
});
