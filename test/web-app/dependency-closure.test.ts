import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ClosureError, dependencyClosure, type Lockfile } from "../../scripts/ci/dependency-closure.js";

const lock = (packages: Lockfile["packages"]): Lockfile => ({ lockfileVersion: 3, packages: { "": {}, ...packages } });
const everything = () => true;

describe("dependencyClosure", () => {
  it("follows dependencies transitively and leaves out packages nothing needs", () => {
    const l = lock({
      "node_modules/app-dep": { dependencies: { leaf: "^1" } },
      "node_modules/leaf": {},
      "node_modules/dev-tool": { dependencies: { leaf: "^1" } },
    });
    expect(dependencyClosure(l, { "app-dep": "^1" }, everything)).toEqual(["node_modules/app-dep", "node_modules/leaf"]);
  });

  it("resolves the nested copy a package sees before the hoisted one, as node does", () => {
    const l = lock({
      "node_modules/a": { dependencies: { shared: "^2" } },
      "node_modules/a/node_modules/shared": { version: "2.0.0" },
      "node_modules/shared": { version: "1.0.0" },
      "node_modules/b": { dependencies: { shared: "^1" } },
    });
    expect(dependencyClosure(l, { a: "*", b: "*" }, everything)).toEqual([
      "node_modules/a",
      "node_modules/a/node_modules/shared",
      "node_modules/b",
      "node_modules/shared",
    ]);
  });

  it("handles scoped names in nested paths", () => {
    const l = lock({
      "node_modules/@s/a": { dependencies: { "@s/b": "*" } },
      "node_modules/@s/a/node_modules/@s/b": { dependencies: { c: "*" } },
      "node_modules/c": {},
    });
    expect(dependencyClosure(l, { "@s/a": "*" }, everything)).toEqual(["node_modules/@s/a", "node_modules/@s/a/node_modules/@s/b", "node_modules/c"]);
  });

  it("keeps the optional package installed for this platform and skips the others", () => {
    const l = lock({
      "node_modules/esbuild": { optionalDependencies: { "@esbuild/linux-x64": "1", "@esbuild/darwin-arm64": "1" } },
      "node_modules/@esbuild/linux-x64": { optional: true },
      "node_modules/@esbuild/darwin-arm64": { optional: true },
    });
    const installed = (p: string) => !p.includes("darwin");
    expect(dependencyClosure(l, { esbuild: "*" }, installed)).toEqual(["node_modules/@esbuild/linux-x64", "node_modules/esbuild"]);
  });

  it("includes required peers and skips missing optional ones", () => {
    const l = lock({
      "node_modules/adapter": { peerDependencies: { framework: "*", watcher: "*" }, peerDependenciesMeta: { watcher: { optional: true } } },
      "node_modules/framework": {},
    });
    expect(dependencyClosure(l, { adapter: "*" }, everything)).toEqual(["node_modules/adapter", "node_modules/framework"]);
  });

  it("fails, naming who needs it, when a required package is not installed", () => {
    const l = lock({ "node_modules/a": { dependencies: { gone: "*" } } });
    expect(() => dependencyClosure(l, { a: "*" }, everything)).toThrow(
      new ClosureError("gone (needed by node_modules/a) is not installed: run npm ci first"),
    );
  });

  it("refuses a lockfile from before npm 7", () => {
    expect(() => dependencyClosure({ lockfileVersion: 1, packages: undefined as never }, {}, everything)).toThrow(ClosureError);
  });

  it("stages the server's and the web app's real dependencies from this repository's lockfile", () => {
    const repoLock = JSON.parse(readFileSync(new URL("../../package-lock.json", import.meta.url), "utf8")) as Lockfile;
    const web = JSON.parse(readFileSync(new URL("../../web-app/package.json", import.meta.url), "utf8")) as { dependencies: Record<string, string> };
    const webPaths = dependencyClosure(repoLock, web.dependencies, everything);
    expect(webPaths).toEqual(expect.arrayContaining(["node_modules/hono", "node_modules/@hono/node-server", "node_modules/nunjucks"]));
    // The web app's image must not carry the server's stack.
    expect(webPaths).not.toContain("node_modules/better-sqlite3");
    expect(webPaths).not.toContain("node_modules/vitest");
  });
});
