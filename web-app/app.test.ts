import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { createApp } from "./app.js";
import { createRenderer } from "./templates.js";

const render = createRenderer(fileURLToPath(new URL("./templates/", import.meta.url)));
const newApp = () => createApp({ version: "42", hostname: "replica-a", render, buzz: () => "Modern Devops Remarkably Boosts Continuous Testing" });

describe("GET /", () => {
  it("shows the host name, the version and the buzz phrase inside the shared layout", async () => {
    const res = await newApp().request("/");
    const html = await res.text();
    expect(res.status, html).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(html).toContain("<h1>Hello from replica-a</h1>");
    expect(html).toContain('<p class="buzz">Modern Devops Remarkably Boosts Continuous Testing</p>');
    // From layout.html: the child template only fills the blocks.
    expect(html).toContain("<title>Home · 42</title>");
    expect(html).toContain('<code class="version">42</code>');
  });

  it("counts the visits of this replica", async () => {
    const app = newApp();
    const visits = async () => /class="visits">(\d+)</.exec(await (await app.request("/")).text())?.[1];
    expect(await visits()).toBe("1");
    expect(await visits()).toBe("2");
    expect(await visits()).toBe("3");
    expect(await (await newApp().request("/")).text()).toContain('class="visits">1<');
  });

  it("generates a fresh phrase of at least five words when none is injected", async () => {
    const app = createApp({ version: "42", hostname: "replica-a", render });
    const html = await (await app.request("/")).text();
    const phrase = /<p class="buzz">([^<]+)<\/p>/.exec(html)?.[1] ?? "";
    expect(phrase.split(" ").length, html).toBeGreaterThanOrEqual(5);
  });
});

describe("GET /hello", () => {
  it("renders a second page on the same layout", async () => {
    const res = await newApp().request("/hello?name=Ada");
    const html = await res.text();
    expect(res.status, html).toBe(200);
    expect(html).toContain("<h1>Hello, Ada!</h1>");
    expect(html).toContain("<title>Hello · 42</title>");
    expect(html).toContain('<code class="hostname">replica-a</code>');
  });

  it("greets the world without a name", async () => {
    expect(await (await newApp().request("/hello")).text()).toContain("<h1>Hello, world!</h1>");
  });

  it("escapes the name, so a link cannot inject markup", async () => {
    const html = await (await newApp().request("/hello?name=%3Cscript%3Ealert(1)%3C%2Fscript%3E")).text();
    expect(html).not.toContain("<script>");
    expect(html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
  });
});

describe("GET /version and /healthz", () => {
  it("answers the version and host name as JSON", async () => {
    const res = await newApp().request("/version");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ version: "42", hostname: "replica-a" });
  });

  it("answers 200 on /healthz", async () => {
    const res = await newApp().request("/healthz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
  });

  it("answers 404 with the error envelope for an unknown path", async () => {
    const res = await newApp().request("/nope");
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: "NOT_FOUND" } });
  });
});
