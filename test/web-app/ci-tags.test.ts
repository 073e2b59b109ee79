import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

/** Sources scripts/ci/lib.sh with only the given variables and prints the tags a build would publish. */
function tagsFor(env: Record<string, string>) {
  const r = spawnSync("bash", ["-c", "source scripts/ci/lib.sh && ci_image && ci_tags"], {
    cwd: repoRoot,
    // DOCKER_BUILDKIT set skips lib.sh's probe of the docker CLI, which these checks do not need.
    env: { PATH: process.env.PATH ?? "", DOCKER_BUILDKIT: "0", ...env },
    encoding: "utf8",
  });
  return { code: r.status, tags: r.stdout.trim().split("\n").filter(Boolean), stderr: r.stderr };
}

describe("the tags scripts/ci publishes", () => {
  const image = "127.0.0.1:5000/acme/web-app";

  it("tags the build number and latest for a push to the default branch", () => {
    expect(tagsFor({ IMAGE: image, TRAVIS_BUILD_NUMBER: "42", TRAVIS_BRANCH: "main", TRAVIS_PULL_REQUEST: "false" }).tags).toEqual([
      `${image}:42`,
      `${image}:latest`,
    ]);
  });

  it("leaves latest alone on another branch", () => {
    expect(tagsFor({ IMAGE: image, BUILD_NUMBER: "43", BRANCH: "feature/x" }).tags).toEqual([`${image}:43`]);
  });

  it("leaves latest alone for a pull request, whose TRAVIS_BRANCH is the target branch", () => {
    expect(tagsFor({ IMAGE: image, BUILD_NUMBER: "44", TRAVIS_BRANCH: "main", TRAVIS_PULL_REQUEST: "17" }).tags).toEqual([`${image}:44`]);
  });

  it("follows DEFAULT_BRANCH", () => {
    expect(tagsFor({ IMAGE: image, BUILD_NUMBER: "45", BRANCH: "trunk", DEFAULT_BRANCH: "trunk" }).tags).toEqual([`${image}:45`, `${image}:latest`]);
  });

  it("refuses an IMAGE that already carries a tag, and a missing build number", () => {
    const tagged = tagsFor({ IMAGE: `${image}:v1`, BUILD_NUMBER: "1" });
    expect(tagged.code).not.toBe(0);
    expect(tagged.stderr).toContain("IMAGE must name a repository");
    const unnumbered = tagsFor({ IMAGE: image });
    expect(unnumbered.code).not.toBe(0);
    expect(unnumbered.stderr).toContain("BUILD_NUMBER is not set");
  });
});
