import { describe, expect, it } from "vitest";
import { familiarRepoTag, parseImageRef, pinnedImage, repoTagKey } from "../../server/domain/image-ref.js";

const digest = `sha256:${"a".repeat(64)}`;

describe("parseImageRef", () => {
  const cases: Array<[string, string, string | undefined]> = [
    ["nginx", "docker.io/library/nginx:latest", undefined],
    ["nginx:1.27", "docker.io/library/nginx:1.27", undefined],
    ["library/nginx", "docker.io/library/nginx:latest", undefined],
    ["docker.io/nginx", "docker.io/library/nginx:latest", undefined],
    ["index.docker.io/library/nginx:1", "docker.io/library/nginx:1", undefined],
    ["acme/web", "docker.io/acme/web:latest", undefined],
    ["acme/team/web:v2", "docker.io/acme/team/web:v2", undefined],
    ["localhost/app", "localhost/app:latest", undefined],
    ["localhost:5000/app:v1", "localhost:5000/app:v1", undefined],
    ["127.0.0.1:5000/acme/web:v1", "127.0.0.1:5000/acme/web:v1", undefined],
    ["ghcr.io/org/app:1.0.0-rc.1", "ghcr.io/org/app:1.0.0-rc.1", undefined],
    [`nginx@${digest}`, "docker.io/library/nginx:latest", digest],
    [`127.0.0.1:5000/app:v2@${digest}`, "127.0.0.1:5000/app:v2", digest],
    ["registry.example.com:443/a_b/c.d/e--f:T_a.g-1", "registry.example.com:443/a_b/c.d/e--f:T_a.g-1", undefined],
  ];
  for (const [input, key, d] of cases) {
    it(`normalizes ${input}`, () => {
      const ref = parseImageRef(input);
      expect(repoTagKey(ref)).toBe(key);
      expect(ref.digest).toBe(d);
    });
  }

  const invalid = [
    "",
    "Upper",
    "acme/Web",
    "nginx:",
    "nginx:-bad",
    `nginx@sha256:${"a".repeat(63)}`,
    "nginx@md5:abc",
    "a//b",
    "-start/x",
    "host:port:extra/app",
    `acme/web:${"t".repeat(129)}`,
  ];
  for (const input of invalid) {
    it(`rejects ${JSON.stringify(input)}`, () => {
      expect(() => parseImageRef(input)).toThrow(/invalid|lowercase/);
    });
  }

  it("uses another default registry when told, as Docker Hub webhooks against a mirror do", () => {
    expect(repoTagKey(parseImageRef("acme/web:v1", "127.0.0.1:5000"))).toBe("127.0.0.1:5000/acme/web:v1");
  });
});

describe("image formatting", () => {
  it("prints the familiar form docker uses, keeping the tag when pinning", () => {
    expect(familiarRepoTag(parseImageRef("docker.io/library/nginx"))).toBe("nginx:latest");
    expect(familiarRepoTag(parseImageRef("docker.io/acme/web:v1"))).toBe("acme/web:v1");
    expect(pinnedImage(parseImageRef("127.0.0.1:5000/app:v2"), digest)).toBe(`127.0.0.1:5000/app:v2@${digest}`);
    expect(pinnedImage(parseImageRef("nginx:1.27"), digest)).toBe(`nginx:1.27@${digest}`);
  });
});
