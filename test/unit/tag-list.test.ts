import http from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it, onTestFinished } from "vitest";
import { createRegistryClient } from "../../server/registry/registry-client.js";
import { RegistryError } from "../../server/registry/registry-port.js";
import { nextPage } from "../../server/registry/tag-list.js";

/** A registry on 127.0.0.1 that answers tag lists with `answer`, recording each request's path and query. */
async function registry(answer: (url: URL, res: http.ServerResponse) => void) {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://registry");
    requests.push(`${url.pathname}${url.search}`);
    answer(url, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    requests,
    client: (pageSize?: number) => createRegistryClient({ insecureRegistries: [host], credentialsFor: () => undefined, tagsPageSize: pageSize }),
  };
}

function json(res: http.ServerResponse, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(200, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

const repo = (host: string) => ({ registry: host, repository: "acme/web" });

describe("the registry client's tag list", () => {
  it("follows the Link pagination to the last page", async () => {
    const all = ["1.0.0", "1.4.2", "1.4.3", "2.0.0", "latest"];
    const r = await registry((url, res) => {
      const n = Number(url.searchParams.get("n"));
      const last = url.searchParams.get("last");
      const from = last ? all.indexOf(last) + 1 : 0;
      const page = all.slice(from, from + n);
      const more = from + n < all.length;
      json(res, { name: "acme/web", tags: page }, more ? { link: `</v2/acme/web/tags/list?last=${page.at(-1)}&n=${n}>; rel="next"` } : {});
    });
    expect(await r.client(2).listTags(repo(r.host))).toEqual(all);
    expect(r.requests).toEqual(["/v2/acme/web/tags/list?n=2", "/v2/acme/web/tags/list?last=1.4.2&n=2", "/v2/acme/web/tags/list?last=2.0.0&n=2"]);
  });

  it("stops after 100 pages, whatever the registry says next", async () => {
    let page = 0;
    const r = await registry((_url, res) => json(res, { tags: [`t${++page}`] }, { link: `</v2/acme/web/tags/list?last=t${page}&n=1>; rel="next"` }));
    const tags = await r.client(1).listTags(repo(r.host));
    expect(tags).toHaveLength(100);
    expect(r.requests).toHaveLength(100);
  });

  it("reads past 1,000 tags from a registry that sends at most 100 a page (Quay), up to 10,000", async () => {
    const all = Array.from({ length: 12_000 }, (_, i) => `t${String(i).padStart(5, "0")}`);
    const r = await registry((url, res) => {
      const last = url.searchParams.get("last");
      const from = last ? all.indexOf(last) + 1 : 0;
      const page = all.slice(from, from + 100);
      json(res, { tags: page }, from + 100 < all.length ? { link: `<?last=${page.at(-1)}&n=100>; rel="next"` } : {});
    });
    const tags = await r.client(1000).listTags(repo(r.host));
    expect(tags).toHaveLength(10_000);
    expect(tags.at(-1)).toBe("t09999");
  });

  it("refuses a page bigger than 4 MiB without holding it whole", async () => {
    let sent = 0;
    const r = await registry((_url, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      const chunk = `"${"x".repeat(64 * 1024)}",`;
      res.write('{"tags":[');
      res.on("error", () => undefined);
      const more = () => {
        while (sent < 64 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", more);
        }
        res.end('"y"]}');
      };
      more();
    });
    await expect(r.client().listTags(repo(r.host))).rejects.toMatchObject({ kind: "protocol", message: expect.stringContaining("exceeds 4 MiB") });
    expect(sent, "the registry could send little more than what was read").toBeLessThan(32 * 1024 * 1024);
  });

  it("does not follow a next page on another host, and drops what is not a tag", async () => {
    const r = await registry((_url, res) =>
      json(res, { tags: ["1.0.0", "../etc", 7, "ok-tag"] }, { link: '<https://elsewhere.example/v2/acme/web/tags/list?last=x>; rel="next"' }),
    );
    expect(await r.client().listTags(repo(r.host))).toEqual(["1.0.0", "ok-tag"]);
    expect(r.requests).toEqual(["/v2/acme/web/tags/list?n=1000"]);
  });

  it("reads a null tag list as no tags, and refuses an answer that is not one", async () => {
    const empty = await registry((_url, res) => json(res, { name: "acme/web", tags: null }));
    expect(await empty.client().listTags(repo(empty.host))).toEqual([]);
    const broken = await registry((_url, res) => json(res, { tags: "1.0.0" }));
    const err = await broken
      .client()
      .listTags(repo(broken.host))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).kind).toBe("protocol");
  });

  it("answers an unknown repository as not_found", async () => {
    const r = await registry((_url, res) => {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ errors: [{ code: "NAME_UNKNOWN", message: "repository name not known to registry" }] }));
    });
    const err = await r
      .client()
      .listTags(repo(r.host))
      .catch((e: unknown) => e);
    expect((err as RegistryError).kind).toBe("not_found");
    expect((err as Error).message).toContain(`${r.host}/acme/web tags`);
  });

  it("reads next links relative or absolute on the same origin only", () => {
    const origin = "http://127.0.0.1:5000";
    expect(nextPage('</v2/a/tags/list?last=b&n=2>; rel="next"', origin)).toBe("/v2/a/tags/list?last=b&n=2");
    expect(nextPage('<http://127.0.0.1:5000/v2/a/tags/list?last=b>; rel="next"', origin)).toBe("/v2/a/tags/list?last=b");
    expect(nextPage('<http://127.0.0.1:5001/v2/a/tags/list?last=b>; rel="next"', origin)).toBeUndefined();
    expect(nextPage('</elsewhere>; rel="next"', origin)).toBeUndefined();
    expect(nextPage('</v2/a/tags/list?last=b>; rel="prev"', origin)).toBeUndefined();
    expect(nextPage(null, origin)).toBeUndefined();
    // Relative to the page it came with, and a rel naming several relations.
    expect(nextPage('<?last=b&n=2>; rel="next"', origin, "/v2/a/tags/list?n=2")).toBe("/v2/a/tags/list?last=b&n=2");
    expect(nextPage('</v2/a/tags/list?last=b>; rel="prev next"', origin)).toBe("/v2/a/tags/list?last=b");
    expect(nextPage("</v2/a/tags/list?last=b>; rel=next", origin)).toBe("/v2/a/tags/list?last=b");
  });
});
