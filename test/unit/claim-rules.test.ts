import { describe, expect, it } from "vitest";
import { claimMismatch, claimRulesProblem, globMatches } from "../../server/domain/claim-rules.js";

describe("claim rules", () => {
  it.each([
    ["acme/*", "acme/web", true],
    ["acme/*", "acme-evil/web", false],
    ["acme/*", "Acme/web", false],
    ["refs/heads/*", "refs/heads/release/1.2", true],
    ["refs/heads/main", "refs/heads/main2", false],
    ["*/.github/workflows/ship.yml@refs/heads/main", "acme/infra/.github/workflows/ship.yml@refs/heads/main", true],
    ["a*b*c", "abc", true],
    ["a*b*c", "acb", false],
    ["a.c", "abc", false],
  ])("%s against %s: %s", (pattern, value, expected) => {
    expect(globMatches(pattern, value)).toBe(expected);
  });

  it("matches in time proportional to pattern × value, not exponentially, on a hostile value", () => {
    const started = performance.now();
    expect(globMatches("*a*a*a*a*a*a*a*a*a*a*b", "a".repeat(5000))).toBe(false);
    expect(performance.now() - started).toBeLessThan(500);
  });

  it("says which claim breaks the rules, and wants a string claim", () => {
    const rules = { repository: ["acme/*"], ref: ["refs/heads/main", "refs/tags/*"] };
    expect(claimMismatch(rules, { repository: "acme/web", ref: "refs/tags/v1" })).toBeUndefined();
    expect(claimMismatch(rules, { repository: "acme/web", ref: "refs/heads/dev" })).toBe(
      'ref "refs/heads/dev" matches none of the source\'s patterns',
    );
    expect(claimMismatch(rules, { repository: ["acme/web"], ref: "refs/heads/main" })).toBe("the token has no repository claim (string)");
  });

  it.each([
    [{ Repository: ["x"] }, "claims.Repository"],
    [{ aud: ["x"] }, "claims.aud"],
    [{ ref: [] }, "claims.ref"],
    [{ ref: ["**"] }, "claims.ref[0]"],
    [{ ref: ["refs/heads/main", "a b"] }, "claims.ref[1]"],
  ])("refuses %j naming %s", (rules, field) => {
    expect(claimRulesProblem(rules)).toMatch(new RegExp(`^${field.replace(/[[\]]/g, "\\$&")}: `));
  });
});
