import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isOpen, nextOpening, parseWindows, type DeployWindow } from "../../server/domain/deploy-window.js";
import { parseDuration, readPolicy } from "../../server/domain/policy.js";

const windows = (text: string) => {
  const w = parseWindows(text);
  if (typeof w === "string") throw new Error(w);
  return w;
};
const at = (iso: string) => Date.parse(iso);

describe("policy labels", () => {
  it("reads every label into one policy", () => {
    const read = readPolicy({
      "deployer.follow": "semver:minor",
      "deployer.approve": "required",
      "deployer.window": "Mon-Fri 09:00-17:00 Europe/Berlin; Sat 10:00-12:00",
      "deployer.min-age": "1h30m",
      "deployer.mode": "notify",
    });
    expect(read.ok).toBe(true);
    if (!read.ok) return;
    expect(read.policy).toMatchObject({
      follow: { kind: "semver", level: "minor", prerelease: false },
      approve: true,
      minAgeMs: 5_400_000,
      mode: "notify",
    });
    expect(read.policy.windows.map((w) => [w.days, w.start, w.end, w.zone])).toEqual([
      [[1, 2, 3, 4, 5], 540, 1020, "Europe/Berlin"],
      [[6], 600, 720, "UTC"],
    ]);
  });

  it("reads the follow forms: levels, ranges, globs, regexes, pre-releases", () => {
    const follow = (v: string) => {
      const r = readPolicy({ "deployer.follow": v });
      return r.ok ? r.policy.follow : r.errors;
    };
    expect(follow("semver:patch")).toEqual({ kind: "semver", level: "patch", prerelease: false });
    expect(follow("semver:major,prerelease")).toEqual({ kind: "semver", level: "major", prerelease: true });
    expect(follow("~1.4")).toEqual({ kind: "range", range: "~1.4", prerelease: false });
    expect(follow("semver:>=1.2 <2")).toEqual({ kind: "range", range: ">=1.2 <2", prerelease: false });
    expect(follow("glob:release-*")).toEqual({ kind: "glob", pattern: "release-*" });
    expect(follow("regex:^v\\d+$")).toEqual({ kind: "regex", pattern: "^v\\d+$" });
  });

  it("reports every unreadable label, naming it, instead of guessing", () => {
    const read = readPolicy({
      "deployer.follow": "semver:sideways",
      "deployer.approve": "yes please",
      "deployer.window": "Funday 09:00-17:00",
      "deployer.min-age": "forever",
      "deployer.mode": "loud",
    });
    expect(read.ok).toBe(false);
    if (read.ok) return;
    expect(read.errors.map((e) => e.split(":")[0])).toEqual([
      "deployer.follow",
      "deployer.approve",
      "deployer.window",
      "deployer.min-age",
      "deployer.mode",
    ]);
    for (const bad of ["regex:(", "glob:nostar", "glob:a/b*", "nonsense"]) expect(readPolicy({ "deployer.follow": bad }).ok, bad).toBe(false);
    for (const bad of [
      "Mon 09:00",
      "Mon 25:00-26:00",
      "Mon 09:00-09:00",
      "Mon 09:00-17:00 Mars/Olympus",
      "Mon 9:00-17:00",
      "Mon 09:00-17:00 UTC extra",
      // Read as something else before: Mon-Fri, 09:00-10:00, Mon.
      "Mon-Fri-Sun 09:00-10:00",
      "Mon 09:00-10:00-23:00",
      "Monkey 09:00-10:00",
      "Mo 09:00-10:00",
    ]) {
      expect(typeof parseWindows(bad), bad).toBe("string");
    }
    // Abbreviations the runtime maps to zones other than the writer's: BST to Asia/Dhaka, IST to Asia/Kolkata, EST to a fixed UTC-5.
    for (const zone of ["BST", "IST", "PST", "CST", "bst"]) {
      expect(parseWindows(`Mon-Fri 09:00-17:00 ${zone}`), zone).toMatch(new RegExp(`^time zone "${zone}" is an abbreviation.*Europe/London`));
    }
    expect(parseWindows("Mon 09:00-17:00 Mars/Olympus")).toBe('unknown time zone "Mars/Olympus"');
    // IANA's, but UTC-5 in July too: an hour off New York's for half the year.
    expect(parseWindows("Mon-Fri 09:00-17:00 EST")).toBe(
      'time zone "EST" is a fixed offset all year, with no summer time; write the place\'s zone (America/New_York)',
    );
    for (const zone of ["mst", "HST"]) expect(parseWindows(`Mon 09:00-17:00 ${zone}`), zone).toMatch(/is a fixed offset all year/);
    // ICU's names that tzdata no longer has.
    for (const zone of ["SystemV/EST5", "US/Pacific-New"]) expect(parseWindows(`Mon 09:00-17:00 ${zone}`)).toBe(`unknown time zone "${zone}"`);
    for (const good of [
      "Monday-Friday 09:00-17:00 Europe/London",
      "sat,SUN 10:00-12:00 UTC",
      "Thursday 09:00-10:00 Etc/GMT-2",
      "daily 00:00-24:00",
      // IANA's own names without an area, in any case, and the days' usual short forms.
      "Mon-Fri 09:00-17:00 CET",
      "Mon-Fri 09:00-17:00 EST5EDT",
      "Mon 09:00-17:00 GMT",
      "Mon 09:00-17:00 Japan",
      "Mon 09:00-17:00 utc",
      "Tues,Thurs 09:00-10:00 europe/berlin",
    ]) {
      expect(Array.isArray(parseWindows(good)), good).toBe(true);
    }
    expect((parseWindows("Monday-Friday 09:00-17:00") as DeployWindow[])[0]!.days).toEqual([1, 2, 3, 4, 5]);
  });

  it("reports a deployer.* label it does not know (a misspelt gate would leave the service without it), and knows its own", () => {
    const read = readPolicy({ "deployer.windows": "Mon-Fri 09:00-17:00 UTC", "deployer.enable": "true", "deployer.self": "true" });
    expect(read).toEqual({
      ok: false,
      errors: [
        "deployer.windows: not a label of the deployer (deployer.follow, deployer.approve, deployer.window, deployer.min-age, deployer.mode, deployer.enable, deployer.self)",
      ],
    });
    expect(readPolicy({ "deployer.enable": "true", "deployer.self": "false", "com.docker.stack.namespace": "web", deployer: "x" }).ok).toBe(true);
  });

  it("reads durations as sums of units, and refuses the rest", () => {
    expect(parseDuration("30m")).toBe(1_800_000);
    expect(parseDuration("1d2h")).toBe(93_600_000);
    expect(parseDuration("500ms")).toBe(500);
    for (const bad of ["", "30", "m", "1h 30m", "-5m", "1w"]) expect(parseDuration(bad), bad).toBeUndefined();
    expect(readPolicy({ "deployer.min-age": "31d" }).ok).toBe(false);
  });

  it("leaves a service with no policy labels on today's behaviour", () => {
    expect(readPolicy({ "com.docker.stack.namespace": "web" })).toEqual({
      ok: true,
      policy: { approve: false, windows: [], minAgeMs: 0, mode: "deploy" },
    });
  });
});

describe("deploy windows", () => {
  it("is open inside the window, in its zone, and closed outside", () => {
    const w = windows("Mon-Fri 09:00-17:00 Europe/Berlin");
    // 2026-12-02 is a Wednesday; Berlin is UTC+1 in winter.
    expect(isOpen(w, at("2026-12-02T08:00:00Z"))).toBe(true);
    expect(isOpen(w, at("2026-12-02T07:59:00Z"))).toBe(false);
    expect(isOpen(w, at("2026-12-02T16:00:00Z"))).toBe(false);
    expect(isOpen(w, at("2026-12-05T10:00:00Z"))).toBe(false); // Saturday
  });

  it("finds the next opening: later today, after a weekend, past midnight", () => {
    const w = windows("Mon-Fri 09:00-17:00 Europe/Berlin");
    expect(new Date(nextOpening(w, at("2026-12-02T05:00:00Z"))).toISOString()).toBe("2026-12-02T08:00:00.000Z");
    expect(new Date(nextOpening(w, at("2026-12-04T18:00:00Z"))).toISOString()).toBe("2026-12-07T08:00:00.000Z");
    const night = windows("Sat 22:00-02:00");
    expect(isOpen(night, at("2026-12-06T01:00:00Z"))).toBe(true); // Sunday 01:00, still Saturday's window
    expect(isOpen(night, at("2026-12-06T03:00:00Z"))).toBe(false);
    expect(new Date(nextOpening(night, at("2026-12-06T03:00:00Z"))).toISOString()).toBe("2026-12-12T22:00:00.000Z");
  });

  it("follows the zone's daylight-saving changes", () => {
    // Berlin springs forward on 2026-03-29 at 02:00 (to 03:00) and falls back on 2026-10-25 at 03:00 (to 02:00).
    const w = windows("daily 09:00-10:00 Europe/Berlin");
    expect(new Date(nextOpening(w, at("2026-03-28T12:00:00Z"))).toISOString()).toBe("2026-03-29T07:00:00.000Z");
    expect(new Date(nextOpening(w, at("2026-10-24T12:00:00Z"))).toISOString()).toBe("2026-10-25T08:00:00.000Z");
    // An opening inside the skipped hour opens when the clock is back inside the window.
    const skipped = windows("daily 02:30-03:30 Europe/Berlin");
    expect(new Date(nextOpening(skipped, at("2026-03-28T12:00:00Z"))).toISOString()).toBe("2026-03-29T01:00:00.000Z");
    const ny = windows("Sun 01:30-01:45 America/New_York");
    expect(new Date(nextOpening(ny, at("2026-11-01T00:00:00Z"))).toISOString()).toBe("2026-11-01T05:30:00.000Z");
  });

  const zones = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"];
  const arbWindow: fc.Arbitrary<DeployWindow> = fc
    .record({
      days: fc.uniqueArray(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 7 }),
      start: fc.integer({ min: 0, max: 1439 }),
      length: fc.integer({ min: 15, max: 1439 }),
      zone: fc.constantFrom(...zones),
    })
    .map(({ days, start, length, zone }) => ({ days: days.sort(), start, end: (start + length) % 1440 || 1440, zone, text: "generated" }));
  const arbTime = fc.integer({ min: at("2026-01-01T00:00:00Z"), max: at("2027-12-31T00:00:00Z") }).map((t) => Math.floor(t / 60_000) * 60_000);

  it("opens next at an instant that is open, not before the asked time, with no open minute in between (property)", () => {
    fc.assert(
      fc.property(fc.array(arbWindow, { minLength: 1, maxLength: 3 }), arbTime, (ws, t) => {
        const next = nextOpening(ws, t);
        expect(next).toBeGreaterThanOrEqual(t);
        expect(next - t).toBeLessThanOrEqual(8 * 86_400_000);
        expect(isOpen(ws, next)).toBe(true);
        // Sampled every 10 minutes: nothing between t and the opening is open.
        for (let s = t; s < next - 60_000; s += 600_000) expect(isOpen(ws, s)).toBe(false);
      }),
      { numRuns: 150 },
    );
  });
});
