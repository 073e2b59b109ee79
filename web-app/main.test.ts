import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it, onTestFinished } from "vitest";

const repoRoot = fileURLToPath(new URL("../", import.meta.url));

/** Runs web-app/main.ts as its own process, the way the image runs main.js. */
function spawnApp(env: Record<string, string>) {
  const child = spawn(process.execPath, ["--import", "tsx", "web-app/main.ts"], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (c) => (out += c));
  child.stderr.on("data", (c) => (err += c));
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  const listening = async (): Promise<number> => {
    for (let i = 0; i < 200; i++) {
      const line = out.split("\n").find((l) => l.includes('"msg":"listening"'));
      if (line) return (JSON.parse(line) as { port: number }).port;
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`the app did not report listening:\n${out}\n${err}`);
  };
  return { child, exited, listening, output: () => out + err };
}

describe("web-app/main.ts as a process", () => {
  it("serves the version it was given and exits 0 on SIGTERM", async () => {
    const app = spawnApp({ PORT: "0", APP_VERSION: "build-7" });
    const port = await app.listening();
    const res = await fetch(`http://127.0.0.1:${port}/version`);
    expect(await res.json()).toMatchObject({ version: "build-7" });

    app.child.kill("SIGTERM");
    expect(await app.exited, app.output()).toBe(0);
    expect(app.output()).toContain('"msg":"stopped"');
  });

  it("stops with exit code 2 and names the variable when PORT is not a number", async () => {
    const app = spawnApp({ PORT: "http" });
    expect(await app.exited).toBe(2);
    expect(app.output()).toContain("PORT");
  });
});

describe("web-app/package.json", () => {
  it("declares the same version ranges as the repository's package.json, whose lockfile the image is staged from", () => {
    const read = (p: string) => JSON.parse(readFileSync(new URL(p, import.meta.url), "utf8")) as Record<string, Record<string, string>>;
    const web = read("./package.json");
    const root = read("../package.json");
    const rootRanges = { ...root.devDependencies, ...root.dependencies };
    for (const [name, range] of Object.entries(web.dependencies ?? {})) {
      expect(rootRanges[name], `${name} in package.json`).toBe(range);
    }
  });
});
