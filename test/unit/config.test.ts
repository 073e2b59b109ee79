import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../server/config/config.js";

const load = (env: Record<string, string>) => loadConfig({ DEPLOYER_SECRET: "config-test-secret-config-test-secret", ...env });

describe("Shepherd's TIMEOUT", () => {
  it("reads as `timeout` reads it: seconds, or a number with an s, m, h or d suffix", () => {
    expect(load({}).rollout.timeoutSeconds).toBe(300);
    expect(load({ TIMEOUT: "120" }).rollout.timeoutSeconds).toBe(120);
    expect(load({ TIMEOUT: "90s" }).rollout.timeoutSeconds).toBe(90);
    expect(load({ TIMEOUT: "5m" }).rollout.timeoutSeconds).toBe(300);
    expect(load({ TIMEOUT: "1.5h" }).rollout.timeoutSeconds).toBe(5400);
  });

  it("refuses anything else, naming the variable", () => {
    for (const bad of ["soon", "0", "-5", "5 minutes"]) {
      expect(() => load({ TIMEOUT: bad }), bad).toThrow(ConfigError);
      expect(() => load({ TIMEOUT: bad }), bad).toThrow(/TIMEOUT/);
    }
  });
});
