import fc from "fast-check";
import semver from "semver";
import { describe, expect, it } from "vitest";
import { admitsTag, followsTo, newOnList, pickFromTagList } from "../../server/domain/follow.js";
import type { FollowPolicy } from "../../server/domain/policy.js";
import { readPolicy } from "../../server/domain/policy.js";

const policy = (label: string): FollowPolicy => {
  const read = readPolicy({ "deployer.follow": label });
  if (!read.ok || !read.policy.follow) throw new Error(`not a follow policy: ${label}`);
  return read.policy.follow;
};

const part = fc.integer({ min: 0, max: 4 });
const version = fc
  .tuple(part, part, part, fc.option(fc.constantFrom("alpha", "beta.1", "rc.2"), { nil: undefined }), fc.boolean())
  .map(([major, minor, patch, pre, v]) => `${v ? "v" : ""}${major}.${minor}.${patch}${pre ? `-${pre}` : ""}`);
const level = fc.constantFrom("patch", "minor", "major");

describe("following versions", () => {
  it("never moves to an older or equal version, and never both ways", () => {
    fc.assert(
      fc.property(level, fc.boolean(), version, version, (lvl, pre, a, b) => {
        const p = policy(`semver:${lvl}${pre ? ",prerelease" : ""}`);
        if (followsTo(p, a, b)) expect(semver.gt(b, a), `${a} -> ${b}`).toBe(true);
        expect(followsTo(p, a, b) && followsTo(p, b, a)).toBe(false);
      }),
    );
  });

  it("stays within the level, and moves to every newer release there", () => {
    fc.assert(
      fc.property(level, version, version, (lvl, a, b) => {
        const from = semver.parse(a)!;
        const to = semver.parse(b)!;
        const within = lvl === "major" || (to.major === from.major && (lvl === "minor" || to.minor === from.minor));
        const expected = within && semver.gt(to, from) && to.prerelease.length === 0;
        expect(followsTo(policy(`semver:${lvl}`), a, b), `${lvl}: ${a} -> ${b}`).toBe(expected);
      }),
    );
  });

  it("admits pre-releases only with ,prerelease", () => {
    expect(followsTo(policy("semver:minor"), "1.4.2", "1.5.0-rc.1")).toBe(false);
    expect(followsTo(policy("semver:minor,prerelease"), "1.4.2", "1.5.0-rc.1")).toBe(true);
    expect(followsTo(policy("semver:minor,prerelease"), "1.5.0-rc.1", "1.5.0")).toBe(true);
    expect(followsTo(policy("semver:minor,prerelease"), "1.5.0", "1.5.0-rc.1")).toBe(false);
    expect(followsTo(policy("^1.4"), "1.4.2", "1.9.0-beta")).toBe(false);
    expect(followsTo(policy("semver:^1.4,prerelease"), "1.4.2", "1.9.0-beta")).toBe(true);
  });

  it("follows a range: only versions inside it, only newer ones", () => {
    const p = policy("~1.4");
    expect(followsTo(p, "1.4.2", "1.4.3")).toBe(true);
    expect(followsTo(p, "1.4.2", "1.5.0")).toBe(false);
    expect(followsTo(p, "1.4.2", "1.4.1")).toBe(false);
    expect(followsTo(policy(">=1.2 <2"), "1.3.0", "1.9.9")).toBe(true);
    expect(followsTo(policy(">=1.2 <2"), "1.3.0", "2.0.0")).toBe(false);
  });

  it("moves nothing from or to a tag that is not a full version", () => {
    const p = policy("semver:major");
    expect(followsTo(p, "latest", "1.4.3")).toBe(false);
    expect(followsTo(p, "1.4.2", "1.5")).toBe(false);
    expect(followsTo(p, "1.4.2", "v1.4.3")).toBe(true);
    expect(admitsTag(p, "1.4.3-alpine")).toBe(false);
  });

  it("follows a glob or regex to any matching pushed tag other than the running one", () => {
    const glob = policy("glob:release-*");
    expect(followsTo(glob, "release-9", "release-10")).toBe(true);
    expect(followsTo(glob, "release-10", "release-9")).toBe(true);
    expect(followsTo(glob, "release-9", "release-9")).toBe(false);
    expect(followsTo(glob, "release-9", "staging-10")).toBe(false);
    expect(admitsTag(glob, "release-.x")).toBe(true);
    expect(admitsTag(policy("glob:a.*"), "abc"), "a dot in a glob is a dot").toBe(false);
    const regex = policy("regex:^main-[0-9a-f]{7}$");
    expect(followsTo(regex, "main-aaaaaaa", "main-bbbbbbb")).toBe(true);
    expect(followsTo(regex, "main-aaaaaaa", "dev-bbbbbbb")).toBe(false);
  });
});

describe("picking from a tag list", () => {
  it("picks the newest version the policy moves to, never an older one", () => {
    fc.assert(
      fc.property(level, version, fc.array(version, { maxLength: 12 }), (lvl, current, tags) => {
        const p = policy(`semver:${lvl}`);
        const picked = pickFromTagList(p, current, tags, []);
        const movable = tags.filter((t) => followsTo(p, current, t));
        if (movable.length === 0) {
          expect(picked).toBeUndefined();
        } else {
          expect(followsTo(p, current, picked!)).toBe(true);
          for (const t of movable) expect(semver.gte(picked!, t)).toBe(true);
        }
      }),
    );
  });

  it("picks 1.4.3 for semver:minor from 1.4.2 among 2.0.0, 1.3.9 and 1.4.3", () => {
    expect(pickFromTagList(policy("semver:minor"), "1.4.2", ["1.3.9", "1.4.2", "1.4.3", "2.0.0", "latest"], [])).toBe("1.4.3");
    expect(pickFromTagList(policy("semver:patch"), "1.4.3", ["1.3.9", "1.4.2", "1.4.3", "2.0.0"], [])).toBeUndefined();
  });

  it("for a pattern, picks among the tags new on the list only, the last in numeric order", () => {
    const glob = policy("glob:build-*");
    const before = new Set(["build-8", "build-9"]);
    const now = ["build-10", "build-11", "build-8", "build-9", "latest"];
    expect(newOnList(undefined, now), "the first look knows of nothing new").toEqual([]);
    expect(newOnList(before, now)).toEqual(["build-10", "build-11", "latest"]);
    expect(pickFromTagList(glob, "build-9", now, newOnList(before, now))).toBe("build-11");
    expect(pickFromTagList(glob, "build-9", now, [])).toBeUndefined();
  });
});
