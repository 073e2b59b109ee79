import { describe, expect, it } from "vitest";
import { claimMismatch, claimRulesProblem, GITHUB_IDENTITY, GITLAB_IDENTITY, globMatches, identityProblem } from "../../server/domain/claim-rules.js";

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

  it.each([
    // One rule that names the owner is enough: a token must match every rule.
    [GITHUB_IDENTITY, { repository: ["acme/*"] }],
    [GITHUB_IDENTITY, { repository: ["acme/web", "acme/api"] }],
    [GITHUB_IDENTITY, { repository_owner: ["acme"], ref: ["refs/heads/*"] }],
    [GITHUB_IDENTITY, { repository_id: ["123456"] }],
    [GITHUB_IDENTITY, { sub: ["repo:acme/*"] }],
    [GITHUB_IDENTITY, { sub: ["repo:acme/web:environment:*"] }],
    [GITHUB_IDENTITY, { sub: ["repository_owner_id:42:*"] }],
    [GITHUB_IDENTITY, { repository: ["acme/*"], sub: ["repo:*"] }],
    [GITLAB_IDENTITY, { project_path: ["acme/*"] }],
    [GITLAB_IDENTITY, { namespace_path: ["acme"] }],
    [GITLAB_IDENTITY, { namespace_path: ["acme/platform/*"] }],
    [GITLAB_IDENTITY, { sub: ["project_path:acme/app:ref_type:branch:ref:main"] }],
  ])("takes the %s rules %j: they name the owner", (identity, rules) => {
    expect(identityProblem(rules, identity)).toBeUndefined();
  });

  it.each([
    [GITHUB_IDENTITY, { sub: ["repo:*"] }, 'claims.sub[0]: "repo:*" takes the tokens of every GitHub Actions account'],
    [GITHUB_IDENTITY, { repository: ["*/web"] }, 'claims.repository[0]: "*/web" takes'],
    // acme-evil/web would pass.
    [GITHUB_IDENTITY, { repository: ["acme*/web"] }, 'claims.repository[0]: "acme*/web" takes'],
    [GITHUB_IDENTITY, { repository: ["acme/*", "*/web"] }, 'claims.repository[1]: "*/web" takes'],
    [
      GITHUB_IDENTITY,
      { repository_owner: ["acme*"] },
      'claims.repository_owner[0]: "acme*" takes the tokens of every GitHub Actions account; write the repository_owner without *',
    ],
    [GITHUB_IDENTITY, { sub: ["*:environment:prod"] }, "claims.sub[0]"],
    [GITHUB_IDENTITY, { sub: ["repo:acme*"] }, "claims.sub[0]"],
    [
      GITHUB_IDENTITY,
      { job_workflow_ref: ["acme/infra/.github/workflows/deploy.yml@refs/heads/main"] },
      "claims: a GitHub Actions source needs a rule that names the owner on one of repository, repository_owner, repository_id, repository_owner_id, sub (job_workflow_ref names a reusable workflow, which any repository may call)",
    ],
    [GITHUB_IDENTITY, { ref: ["refs/heads/main"] }, "claims: a GitHub Actions source needs"],
    [GITLAB_IDENTITY, { project_path: ["*/app"] }, 'claims.project_path[0]: "*/app" takes the tokens of every gitlab.com account'],
    [GITLAB_IDENTITY, { namespace_path: ["acme*"] }, "claims.namespace_path[0]"],
    [GITLAB_IDENTITY, { sub: ["project_path:*"] }, "claims.sub[0]"],
    [
      GITLAB_IDENTITY,
      { ref: ["main"] },
      "claims: a gitlab.com source needs a rule that names the owner on one of project_path, namespace_path, project_id, namespace_id, sub",
    ],
  ])("refuses the %s rules %j", (identity, rules, message) => {
    expect(identityProblem(rules, identity)).toMatch(new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
  });
});
