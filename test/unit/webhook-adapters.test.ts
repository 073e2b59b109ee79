import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { AppError } from "../../server/domain/app-error.js";
import type { ParsedWebhook } from "../../server/domain/push-event.js";
import { parseDistributionEnvelope } from "../../server/webhooks/distribution.js";
import { parseDockerHubPush } from "../../server/webhooks/docker-hub.js";

// The shared folder is a sibling of the repository, in development and in CI alike.
const FIXTURES = new URL("../fixtures/webhooks/", import.meta.url);
const fixture = (name: string): unknown => JSON.parse(readFileSync(new URL(name, FIXTURES), "utf8"));
const clone = <T>(value: T): T => structuredClone(value);

const hub = (body: unknown, dockerHubRegistry = "docker.io") => parseDockerHubPush(body, { dockerHubRegistry });
const show = (value: unknown) => JSON.stringify(value, null, 1);

const hookUrl = (path: string) => `https://registry.hub.docker.com/u/${path}/`;

const expectedByFixture: Record<string, { parse: (body: unknown) => ParsedWebhook; expected: ParsedWebhook }> = {
  "dockerhub-push.json": {
    parse: (b) => hub(b),
    expected: {
      events: [
        {
          eventKey: "dockerhub:docker.io/svendowideit/testhook:latest@1417566161",
          image: { registry: "docker.io", repository: "svendowideit/testhook", tag: "latest" },
          callbackUrl: hookUrl("svendowideit/testhook/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a"),
          pusher: "trustedbuilder",
        },
      ],
      ignored: [],
    },
  },
  // Float timestamps (1.417566161e+09) give the same key as the integer form, so redelivery stays idempotent.
  "dockerhub-push-legacy-images.json": {
    parse: (b) => hub(b),
    expected: {
      events: [
        {
          eventKey: "dockerhub:docker.io/svendowideit/testhook:latest@1417566161",
          image: { registry: "docker.io", repository: "svendowideit/testhook", tag: "latest" },
          callbackUrl: hookUrl("svendowideit/testhook/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a"),
          pusher: "trustedbuilder",
        },
      ],
      ignored: [],
    },
  },
  "dockerhub-push-captured-2022.json": {
    parse: (b) => hub(b),
    expected: {
      events: [
        {
          eventKey: "dockerhub:docker.io/bluebrown/busybox:latest@1671307562",
          image: { registry: "docker.io", repository: "bluebrown/busybox", tag: "latest" },
          callbackUrl: hookUrl("bluebrown/busybox/hook/565a7531f7ab4a1283624816984a5bc5"),
          pusher: "bluebrown",
        },
      ],
      ignored: [],
    },
  },
  "dockerhub-push-captured-2017.json": {
    parse: (b) => hub(b),
    expected: {
      events: [
        {
          eventKey: "dockerhub:docker.io/antoineaumjaud/api-synology-chatbot:latest@1494801991",
          image: { registry: "docker.io", repository: "antoineaumjaud/api-synology-chatbot", tag: "latest" },
          callbackUrl: hookUrl("antoineaumjaud/api-synology-chatbot/hook/2j1gahegc4bij42jjfj0c0daeg0ddeccc"),
          pusher: "antoineaumjaud",
        },
      ],
      ignored: [],
    },
  },
  "distribution-envelope-mixed.json": {
    parse: parseDistributionEnvelope,
    expected: {
      events: [],
      ignored: [
        { reason: "untagged", eventId: "asdf-asdf-asdf-asdf-0", repository: "library/test" },
        { reason: "not_a_manifest", eventId: "asdf-asdf-asdf-asdf-1", mediaType: "application/vnd.docker.container.image.rootfs.diff+x-gtar" },
        { reason: "not_a_manifest", eventId: "asdf-asdf-asdf-asdf-2", mediaType: "application/vnd.docker.container.image.rootfs.diff+x-gtar" },
      ],
    },
  },
  "distribution-envelope-mixed-serialized.json": {
    parse: parseDistributionEnvelope,
    expected: {
      events: [],
      ignored: [
        { reason: "untagged", eventId: "asdf-asdf-asdf-asdf-0", repository: "library/test" },
        { reason: "not_a_manifest", eventId: "asdf-asdf-asdf-asdf-1", mediaType: "application/vnd.docker.container.image.rootfs.diff+x-gtar" },
        { reason: "not_a_manifest", eventId: "asdf-asdf-asdf-asdf-2", mediaType: "application/vnd.docker.container.image.rootfs.diff+x-gtar" },
      ],
    },
  },
  "distribution-pull-manifest.json": {
    parse: parseDistributionEnvelope,
    expected: { events: [], ignored: [{ reason: "not_a_push", eventId: "320678d8-ca14-430f-8bb6-4ca139cd83f7", action: "pull" }] },
  },
  "distribution-push-manifest.json": {
    parse: parseDistributionEnvelope,
    expected: {
      events: [
        {
          eventKey: "registry:6fb5fd5c-a2f7-4d96-bd77-6de873a21e5f",
          image: { registry: "registry.default.svc", repository: "wjoel/gitweb", tag: "2018-03-26-b1" },
          digestHint: "sha256:2c39235310cfed3fc661bf899a4b79894327220d4947edbf952af8941614feea",
        },
      ],
      ignored: [],
    },
  },
  "distribution-push-manifest-untagged.json": {
    parse: parseDistributionEnvelope,
    expected: { events: [], ignored: [{ reason: "untagged", eventId: "6fb5fd5c-a2f7-4d96-bd77-6de873a21e5f", repository: "wjoel/gitweb" }] },
  },
};

function expectInvalid(parse: () => unknown, field: string, body: unknown): AppError {
  let caught: unknown;
  try {
    caught = parse();
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected VALIDATION_FAILED for ${show(body)}, got ${show(caught)}`).toBeInstanceOf(AppError);
  const err = caught as AppError;
  expect(err.code, err.message).toBe("VALIDATION_FAILED");
  expect(err.message.startsWith(`${field}: `), `"${err.message}" should name ${field}; body ${show(body)}`).toBe(true);
  return err;
}

describe("recorded payloads", () => {
  it("has an expectation for every Docker Hub push and distribution envelope fixture", () => {
    const files = readdirSync(FIXTURES).filter(
      (f) => /^dockerhub-push.*\.json$/.test(f) || (/^distribution-.*\.json$/.test(f) && "events" in (fixture(f) as object)),
    );
    expect(files.sort()).toEqual(Object.keys(expectedByFixture).sort());
  });

  it.each(Object.keys(expectedByFixture))("parses %s to its normalized events", (name) => {
    const { parse, expected } = expectedByFixture[name]!;
    const body = fixture(name);
    expect(parse(body), show(body)).toEqual(expected);
  });

  it("ignores a delete event (the docs' target fragment) as not a push", () => {
    const { target } = fixture("distribution-delete-target-fragment.json") as { target: unknown };
    const body = { events: [{ id: "del-1", action: "delete", target }] };
    expect(parseDistributionEnvelope(body), show(body)).toEqual({
      events: [],
      ignored: [{ reason: "not_a_push", eventId: "del-1", action: "delete" }],
    });
  });

  it("rejects our own callback body, which is not a push", () => {
    const body = fixture("dockerhub-callback-success.json");
    expectInvalid(() => hub(body), "push_data", body);
  });
});

describe("Docker Hub pushes", () => {
  const push = (repoName: string, extra: Record<string, unknown> = {}) => ({
    push_data: { tag: "v1", pushed_at: 1700000000, ...extra },
    repository: { repo_name: repoName, full_description: null, brand_new_field: { x: 1 } },
  });

  it("builds the image on DEPLOYER_DOCKERHUB_REGISTRY, without library/ off docker.io", () => {
    const local = hub(push("acme/web"), "127.0.0.1:5000");
    expect(local.events[0]?.image, show(local)).toEqual({ registry: "127.0.0.1:5000", repository: "acme/web", tag: "v1" });
    expect(local.events[0]?.eventKey).toBe("dockerhub:127.0.0.1:5000/acme/web:v1@1700000000");
    expect(hub(push("nginx"), "127.0.0.1:5000").events[0]?.image.repository).toBe("nginx");
    expect(hub(push("nginx")).events[0]?.image.repository).toBe("library/nginx");
  });

  it("reads _/name as an official library/ image", () => {
    const result = hub(push("_/nginx"));
    expect(result.events[0]?.image, show(result)).toEqual({ registry: "docker.io", repository: "library/nginx", tag: "v1" });
    expect(hub(push("_/nginx"), "mirror.local:5000").events[0]?.image.repository).toBe("library/nginx");
  });

  it("leaves out callbackUrl and pusher when absent or null", () => {
    const body = { ...push("acme/web", { pusher: null }), callback_url: null };
    const result = hub(body);
    expect(result.events[0], show(result)).toEqual({
      eventKey: "dockerhub:docker.io/acme/web:v1@1700000000",
      image: { registry: "docker.io", repository: "acme/web", tag: "v1" },
    });
  });

  it("deploys image manifest and index media types and ignores a Helm chart", () => {
    const index = hub(push("acme/web", { media_type: "application/vnd.oci.image.index.v1+json" }));
    expect(index.events, show(index)).toHaveLength(1);
    const chart = hub(push("acme/chart", { media_type: "application/vnd.cncf.helm.config.v1+json" }));
    expect(chart, show(chart)).toEqual({
      events: [],
      ignored: [{ reason: "not_an_image", mediaType: "application/vnd.cncf.helm.config.v1+json", repository: "acme/chart", tag: "v1" }],
    });
  });

  it.each([
    [null, "body"],
    [[], "body"],
    [{ repository: { repo_name: "acme/web" } }, "push_data"],
    [{ push_data: { tag: 7, pushed_at: 1 }, repository: { repo_name: "acme/web" } }, "push_data.tag"],
    [{ push_data: { pushed_at: 1 }, repository: { repo_name: "acme/web" } }, "push_data.tag"],
    [{ push_data: { tag: "", pushed_at: 1 }, repository: { repo_name: "acme/web" } }, "push_data.tag"],
    [{ push_data: { tag: "bad tag!", pushed_at: 1 }, repository: { repo_name: "acme/web" } }, "push_data.tag"],
    [{ push_data: { tag: "v1", pushed_at: "yesterday" }, repository: { repo_name: "acme/web" } }, "push_data.pushed_at"],
    [{ push_data: { tag: "v1", pushed_at: 1 }, repository: {} }, "repository.repo_name"],
    [{ push_data: { tag: "v1", pushed_at: 1 }, repository: { repo_name: "Acme/Web" } }, "repository.repo_name"],
    [{ push_data: { tag: "v1", pushed_at: 1 }, repository: { repo_name: "evil.example.com/acme/web" } }, "repository.repo_name"],
    [{ push_data: { tag: "v1", pushed_at: 1 }, repository: { repo_name: "acme/web:latest" } }, "repository.repo_name"],
    [{ push_data: { tag: "v1", pushed_at: 1 }, repository: { repo_name: "acme//web" } }, "repository.repo_name"],
    [{ push_data: { tag: "v1", pushed_at: 1 }, repository: { repo_name: "acme/web" }, callback_url: 5 }, "callback_url"],
  ])("rejects %j naming %s", (body, field) => {
    expectInvalid(() => hub(body), field, body);
  });

  it("says what it expected and what it got", () => {
    const body = { push_data: { tag: 7, pushed_at: 1 }, repository: { repo_name: "acme/web" } };
    expect(expectInvalid(() => hub(body), "push_data.tag", body).message).toBe("push_data.tag: expected a string, got a number");
    const missing = { repository: { repo_name: "acme/web" } };
    expect(expectInvalid(() => hub(missing), "push_data", missing).message).toBe("push_data: expected an object, got nothing");
  });
});

describe("distribution envelopes", () => {
  const tagged = () => clone(fixture("distribution-push-manifest.json")) as { events: Record<string, any>[] };

  it("falls back to the host of target.url when the request host is missing", () => {
    const body = tagged();
    delete body.events[0]!.request;
    body.events[0]!.target.url =
      "http://127.0.0.1:5000/v2/wjoel/gitweb/manifests/sha256:2c39235310cfed3fc661bf899a4b79894327220d4947edbf952af8941614feea";
    const result = parseDistributionEnvelope(body);
    expect(result.events[0]?.image, show(result)).toEqual({ registry: "127.0.0.1:5000", repository: "wjoel/gitweb", tag: "2018-03-26-b1" });
  });

  it("accepts size, length, both or neither, and the OCI and list media types", () => {
    for (const mediaType of [
      "application/vnd.oci.image.manifest.v1+json",
      "application/vnd.oci.image.index.v1+json",
      "application/vnd.docker.distribution.manifest.list.v2+json",
    ]) {
      const body = tagged();
      Object.assign(body.events[0]!.target, { mediaType, size: undefined, length: 1576 });
      expect(parseDistributionEnvelope(body).events, show(body)).toHaveLength(1);
    }
    const neither = tagged();
    delete neither.events[0]!.target.size;
    delete neither.events[0]!.target.length;
    expect(parseDistributionEnvelope(neither).events, show(neither)).toHaveLength(1);
  });

  it("keeps each event of a batch apart and in order", () => {
    const body = { events: [...tagged().events, ...(fixture("distribution-pull-manifest.json") as { events: unknown[] }).events] };
    const result = parseDistributionEnvelope(body);
    expect(
      result.events.map((e) => e.eventKey),
      show(result),
    ).toEqual(["registry:6fb5fd5c-a2f7-4d96-bd77-6de873a21e5f"]);
    expect(result.ignored, show(result)).toEqual([{ reason: "not_a_push", eventId: "320678d8-ca14-430f-8bb6-4ca139cd83f7", action: "pull" }]);
  });

  it("acknowledges an empty envelope", () => {
    expect(parseDistributionEnvelope({ events: [] })).toEqual({ events: [], ignored: [] });
  });

  const broken = (mutate: (event: Record<string, any>) => void) => {
    const body = tagged();
    mutate(body.events[0]!);
    return body;
  };

  it.each([
    [{}, "events"],
    [{ events: {} }, "events"],
    [{ events: [{ action: "push" }] }, "events[0].id"],
    [broken((e) => delete e.action), "events[0].action"],
    [broken((e) => (e.target.size = "big")), "events[0].target.size"],
    [broken((e) => (e.target.tag = 5)), "events[0].target.tag"],
    [broken((e) => (e.target.tag = "-bad")), "events[0].target.tag"],
    [broken((e) => (e.target.repository = "WJoel/gitweb")), "events[0].target.repository"],
    [broken((e) => (e.target.repository = "wjoel/gitweb:latest")), "events[0].target.repository"],
    [broken((e) => delete e.target.repository), "events[0].target.repository"],
    [broken((e) => (e.target.digest = "sha256:0123")), "events[0].target.digest"],
    [broken((e) => (e.request.host = "registry")), "events[0].request.host"],
    [broken((e) => (delete e.request, delete e.target.url)), "events[0].request.host"],
    [broken((e) => (delete e.request, (e.target.url = "not a url"))), "events[0].target.url"],
  ])("rejects %j naming %s", (body, field) => {
    expectInvalid(() => parseDistributionEnvelope(body), field, body);
  });
});
