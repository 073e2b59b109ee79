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

describe("DEPLOYER_PUBLIC_URL", () => {
  it("is the server's http(s) base URL, without a trailing slash; unset by default", () => {
    expect(load({}).notify.publicUrl).toBeUndefined();
    expect(load({ DEPLOYER_PUBLIC_URL: "https://deploy.acme.example/" }).notify.publicUrl).toBe("https://deploy.acme.example");
    expect(load({ DEPLOYER_PUBLIC_URL: "http://10.0.0.5:8080/deployer" }).notify.publicUrl).toBe("http://10.0.0.5:8080/deployer");
  });

  it("refuses what is not a plain http(s) URL, naming the variable", () => {
    for (const bad of ["deploy.acme.example", "ftp://deploy.acme.example", "https://deploy.acme.example/?a=1", "https://u:p@deploy.acme.example"]) {
      expect(() => load({ DEPLOYER_PUBLIC_URL: bad }), bad).toThrow(/DEPLOYER_PUBLIC_URL/);
    }
  });
});
