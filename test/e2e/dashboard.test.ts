/**
 * The dashboard in a real browser (Debian's Chromium, driven by
 * playwright-core) against the server process on the real swarm, with the
 * CLI beside it: sign in, see the service, a push's deployment arriving live
 * and reaching succeeded, `deployer deploy --follow` (exit 0, --json lines)
 * and a rolled-back image (exit 1), a rollback with the button and its
 * timeline, a forged POST refused, sign-out, and a read-only token that sees
 * no button. Screenshots of each page at desktop and phone width go to
 * test-results/dashboard/. One story on a service of its own.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";
import { describeDocker, freePort, uniqueName, waitFor } from "../helpers/docker-env.js";
import { createE2eEnvironment, type E2eEnvironment } from "../helpers/e2e-env.js";
import { repoRoot } from "../helpers/server-process.js";

const shots = join(repoRoot, "test-results", "dashboard");
const chromiumPath = "/usr/bin/chromium";
const WAIT = { timeout: 90_000 };

/** The page as it looks on a desktop and on a phone (and, for one of them, in dark mode). */
async function screenshot(page: Page, name: string, opts: { dark?: boolean } = {}) {
  for (const [width, height, size] of [
    [1280, 860, "desktop"],
    [390, 844, "phone"],
  ] as const) {
    await page.setViewportSize({ width, height });
    await page.screenshot({ path: join(shots, `${name}-${size}.png`), fullPage: true });
  }
  if (opts.dark) {
    await page.emulateMedia({ colorScheme: "dark" });
    await page.setViewportSize({ width: 1280, height: 860 });
    await page.screenshot({ path: join(shots, `${name}-dark.png`), fullPage: true });
    await page.emulateMedia({ colorScheme: "light" });
  }
  await page.setViewportSize({ width: 1280, height: 860 });
}

const waitForRow = <T>(read: () => T | undefined) =>
  waitFor(async () => read(), { timeoutMs: 90_000, intervalMs: 100, what: "the push's deployment" });

async function signIn(page: Page, url: string, token: string) {
  await page.goto(`${url}/`);
  await expect.poll(() => page.url()).toBe(`${url}/sign-in`);
  await page.getByLabel("API token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${url}/`);
}

describeDocker(
  "the dashboard in a browser, and the CLI, on a real swarm",
  () => {
    let env: E2eEnvironment;
    let context: BrowserContext;
    let profile: string;

    beforeAll(async () => {
      if (!existsSync(chromiumPath)) throw new Error(`${chromiumPath} is missing: install Debian's chromium package (bash .ci/run does)`);
      mkdirSync(shots, { recursive: true });
      env = await createE2eEnvironment({ builds: { v1: {}, v2: {}, v3: {}, bad: { healthy: false } } });
      profile = mkdtempSync(join(tmpdir(), "deployer-chromium-"));
      context = await chromium.launchPersistentContext(profile, {
        executablePath: chromiumPath,
        headless: true,
        args: [
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
        ],
        viewport: { width: 1280, height: 860 },
      });
    });

    afterAll(async () => {
      await context?.close();
      if (profile) rmSync(profile, { recursive: true, force: true });
      await env?.close();
    });

    it("signs in, follows a push live, deploys with the CLI, rolls back with the button, refuses a forged POST, signs out; read-only sees no button", async () => {
      const url = env.server.url;
      const name = uniqueName("dash");
      const port = await freePort();
      const repo = `${env.notifying.host}/reg/${name}`;
      await env.publish("v1", `${repo}:live`);
      // The image's own health check stays on: it is what makes the bad build roll back below.
      await env.createService(name, `${repo}:live`, port, "v1");
      const cli = { DEPLOYER_URL: url, DEPLOYER_TOKEN: env.apiToken };

      // Sign in; the service is listed with its image, digest and replicas.
      const page = context.pages()[0] ?? (await context.newPage());
      const consoleErrors: string[] = [];
      page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
      await signIn(page, url, env.apiToken);
      const row = page.locator(`tr[data-service="${name}"]`);
      await expect.poll(() => row.textContent()).toContain(`${repo}:live`);
      // The app answers before its first health check passes; until then swarm counts its task as starting (0/1).
      await expect
        .poll(
          async () => {
            if ((await row.textContent())?.includes("1/1")) return true;
            await page.reload();
            return false;
          },
          { timeout: 60_000, interval: 1000 },
        )
        .toBe(true);
      await screenshot(page, "services", { dark: true });

      // A push arrives live on the history page (no reload), and its deployment page grows to succeeded.
      await page.goto(`${url}/history?service=${name}`);
      await page.evaluate(() => ((window as unknown as { stayed: boolean }).stayed = true));
      const before = await page.locator("tbody tr").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-id")));
      await expect.poll(() => page.locator(".live-state").textContent()).toContain("Live");
      const digest2 = await env.publish("v2", `${repo}:live`);
      // The push's deployment, as the record names it; its row must then come to the open page by itself.
      const pushedId = (
        await waitForRow(() =>
          env.query<{ id: string }>("select id from deployments where service = ? and coalesce(digest, digest_hint) = ?", name, digest2),
        )
      ).id;
      expect(before).not.toContain(pushedId);
      const arrived = page.locator(`tbody tr.arrived[data-id="${pushedId}"]`);
      await arrived.waitFor(WAIT);
      const rollout = await context.newPage();
      await rollout.goto(`${url}/deployments/${pushedId}`);
      await screenshot(rollout, "deployment-live");
      // Its way back appears only once it has succeeded.
      const wayBack = rollout.getByRole("link", { name: "Roll back to this deployment…" });
      await wayBack.waitFor({ state: "visible", ...WAIT });
      await rollout.locator("[data-dep-status] .status-succeeded").waitFor(WAIT);
      await arrived.locator("[data-status] .status-succeeded").waitFor(WAIT);
      expect(await page.evaluate(() => (window as unknown as { stayed?: boolean }).stayed)).toBe(true);
      const pushed = await env.getDeployment(pushedId);
      expect(pushed, JSON.stringify(pushed.events)).toMatchObject({ status: "succeeded", digest: digest2 });
      const timeline = await rollout.locator("ol.timeline li").allTextContents();
      expect(timeline.length, timeline.join("\n")).toBe(pushed.events.length);
      expect(timeline.at(-1)).toContain("succeeded");
      await screenshot(rollout, "deployment-succeeded");
      await screenshot(page, "history");
      await rollout.close();

      // The services page, left open, shows the digest a deployment moved the service to, without a reload.
      await page.goto(`${url}/`);
      await page.evaluate(() => ((window as unknown as { stayed: boolean }).stayed = true));
      await expect.poll(() => page.locator(".live-state").textContent()).toContain("Live");

      // The CLI on the same swarm: --follow --json exits 0 on success, every line JSON; a rolled-back image exits 1.
      const digest3 = await env.publish("v3", `${repo}:v3`);
      const ok = await runCli(["deploy", name, "--tag", "v3", "--follow", "--json"], cli);
      expect(ok.code, ok.stderr + ok.stdout).toBe(0);
      const lines = ok.stdout
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines[0]).toHaveProperty("deployment");
      expect(lines.at(-1)).toMatchObject({ event: "final", status: "succeeded" });
      expect(await env.serviceImage(name)).toBe(`${repo}:v3@${digest3}`);
      await expect.poll(() => row.locator("[data-image] .digest").getAttribute("title"), WAIT).toBe(digest3);
      expect(await row.locator("[data-image] .image").textContent()).toBe(`${repo}:v3`);
      expect(await page.evaluate(() => (window as unknown as { stayed?: boolean }).stayed)).toBe(true);
      await env.publish("bad", `${repo}:bad`);
      const bad = await runCli(["deploy", name, "--tag", "bad", "--follow"], cli);
      expect(bad.code, bad.stderr + bad.stdout).toBe(1);
      expect(bad.stdout.trimEnd().split("\n").at(-1)).toMatch(/rolled_back|failed/);

      // Roll back with the button to the pushed v2, through the chooser and the confirmation that says what happens.
      await page.goto(`${url}/`);
      await row.getByRole("link", { name: "Roll back…" }).click();
      await page.locator(`input[value="${pushedId}"]`).check();
      await page.getByRole("button", { name: "Review rollback…" }).click();
      expect(await page.locator(".confirm").textContent()).toContain("held");
      await screenshot(page, "confirm-rollback");
      await page.getByRole("button", { name: `Roll back ${name}` }).click();
      await page.waitForURL(/\/deployments\/dep_/);
      await page.locator("[data-dep-status] .status-succeeded").waitFor(WAIT);
      const rolledId = page.url().split("/").at(-1)!;
      const rolled = await env.getDeployment(rolledId);
      expect(rolled).toMatchObject({ trigger: "rollback", status: "succeeded", digest: digest2, requestedBy: "e2e-operator" });
      expect((await page.locator("ol.timeline li").allTextContents()).length).toBe(rolled.events.length);
      expect(await env.serviceImage(name)).toBe(`${repo}:live@${digest2}`);
      await screenshot(page, "deployment-rollback");
      await page.goto(`${url}/`);
      expect(await row.textContent()).toContain("held");
      expect(await row.textContent()).toContain("quarantined");
      await screenshot(page, "services-held", { dark: true });

      // Not one CSP refusal or script error so far.
      expect(consoleErrors).toEqual([]);
      // A forged POST (no CSRF token) from the signed-in browser is refused and changes nothing.
      const forged = await page.evaluate(
        (path) => fetch(path, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "" }).then((r) => r.status),
        `/services/${name}/resume`,
      );
      expect(forged).toBe(403);
      const services = await env.apiCall("GET", "/api/services");
      expect(services.body.items.find((s: { name: string }) => s.name === name)).toMatchObject({ held: true });

      await page.goto(`${url}/`);
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.waitForURL(`${url}/sign-in`);
      await page.goto(`${url}/history`);
      expect(page.url()).toBe(`${url}/sign-in`);
      await screenshot(page, "sign-in");

      // Read-only: every page, and not one button that changes anything.
      const reader = await env.tokens.signApiToken({ sub: "e2e-viewer", scopes: ["deployments:read"] });
      await signIn(page, url, reader);
      await expect.poll(() => row.textContent()).toContain(name);
      expect(await page.getByRole("link", { name: "Roll back…" }).count()).toBe(0);
      expect(await page.getByRole("button", { name: "Deploy…" }).count()).toBe(0);
      expect(await page.locator("main form").count()).toBe(0);
      await screenshot(page, "services-read-only");
      await page.goto(`${url}/deployments/${rolledId}`);
      expect(await page.locator("main .actions a, main form").count()).toBe(0);
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.waitForURL(`${url}/sign-in`);
      // The forged POST's refusal, which the browser reports, and nothing else.
      expect(consoleErrors).toEqual([expect.stringContaining("403")]);
    });
  },
  { timeout: 420_000 },
);
