import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { AppError } from "../../server/domain/app-error.js";
import { parseAcrEvent } from "../../server/webhooks/acr.js";
import { parseEcrEvent } from "../../server/webhooks/ecr.js";
import { parseGarPush } from "../../server/webhooks/gar.js";
import { parseGiteaPackage } from "../../server/webhooks/gitea.js";
import { parseGitHubPackage } from "../../server/webhooks/github.js";
import { parseHarborEvent } from "../../server/webhooks/harbor.js";
import { parseQuayPush } from "../../server/webhooks/quay.js";

const FIXTURES = new URL("../fixtures/webhooks/", import.meta.url);
// Fixtures are edited freely below, so they are untyped.
const fixture = (name: string): any => JSON.parse(readFileSync(new URL(name, FIXTURES), "utf8"));
const show = (value: unknown) => JSON.stringify(value, null, 1);
const DIGEST = `sha256:${"a".repeat(64)}`;

function invalid(call: () => unknown, field: string) {
  let caught: unknown;
  try {
    call();
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected VALIDATION_FAILED naming ${field}`).toBeInstanceOf(AppError);
  expect((caught as AppError).message.startsWith(`${field}: `), (caught as AppError).message).toBe(true);
}

describe("github adapter", () => {
  const github = (body: unknown, event = "package") => parseGitHubPackage(body, { event, deliveryKey: "github:src:d1" });

  it.each(["ghcr-package-published.json", "ghcr-registry-package.json"])("acknowledges GitHub's untagged example %s as untagged", (name) => {
    expect(github(fixture(name), name.includes("registry") ? "registry_package" : "package")).toEqual({
      events: [],
      ignored: [{ reason: "untagged", repository: "codertocat/hello-world" }],
    });
  });

  it("deploys a tagged version, owner and name lower-cased, with the tag's digest as hint", () => {
    const body = fixture("ghcr-package-published.json");
    body.package.package_version.container_metadata.tag = { name: "v1.2", digest: DIGEST };
    body.package.package_version.package_url = "ghcr.io/Codertocat/Hello-World:v1.2";
    expect(github(body), show(body)).toEqual({
      events: [{ eventKey: "github:src:d1", image: { registry: "ghcr.io", repository: "codertocat/hello-world", tag: "v1.2" }, digestHint: DIGEST }],
      ignored: [],
    });
  });

  it("answers ping and other events without deploying, and skips non-container packages", () => {
    expect(github({ zen: "Keep it logically awesome." }, "ping").ignored[0]!.reason).toBe("ping");
    expect(github({}, "push").ignored[0]!.reason).toBe("not_a_package_event");
    const npm = fixture("ghcr-package-published.json");
    npm.package.ecosystem = "npm";
    expect(github(npm).ignored[0]!.reason).toBe("not_a_container");
  });

  it("refuses a package_url whose host is no registry", () => {
    const body = fixture("ghcr-package-published.json");
    body.package.package_version.container_metadata.tag.name = "v1";
    body.package.package_version.package_url = "acme/web:v1";
    invalid(() => github(body), "package.package_version.package_url");
  });
});

describe("gitea adapter", () => {
  const gitea = (body: unknown, event: string | undefined = "package") => parseGiteaPackage(body, { event, deliveryKey: "gitea:src:d1" });

  it("deploys a container version from the Gitea host, with no digest", () => {
    expect(gitea(fixture("gitea-package-created.json"))).toEqual({
      events: [{ eventKey: "gitea:src:d1", image: { registry: "gitea.example.com", repository: "acme/web", tag: "v1.2.0" } }],
      ignored: [],
    });
  });

  it("skips the sha256: versions of a multi-platform push, deletions and other package types", () => {
    const child = fixture("gitea-package-created.json");
    child.package.version = DIGEST;
    expect(gitea(child).ignored).toEqual([{ reason: "untagged", repository: "acme/web" }]);
    const deleted = fixture("gitea-package-created.json");
    deleted.action = "deleted";
    expect(gitea(deleted).ignored[0]!.reason).toBe("not_a_push");
    const npm = fixture("gitea-package-created.json");
    npm.package.type = "npm";
    expect(gitea(npm).ignored[0]!.reason).toBe("not_a_container");
    expect(gitea({}, "push").ignored[0]!.reason).toBe("not_a_package_event");
  });
});

describe("harbor adapter", () => {
  const harbor = (body: unknown) => parseHarborEvent(body, { sourceKey: "harbor:src", bodyDigest: "b0" });

  it("deploys the Default format's tagged push with the registry from resource_url", () => {
    expect(harbor(fixture("harbor-push.json"))).toEqual({
      events: [
        {
          eventKey: "harbor:src:body:b0:0",
          image: { registry: "hub.harbor.com", repository: "test-webhook/debian", tag: "latest" },
          digestHint: "sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8",
        },
      ],
      ignored: [],
    });
  });

  it("skips a push whose tag holds the digest (pushed without a tag)", () => {
    expect(harbor(fixture("harbor-push-by-digest.json"))).toEqual({ events: [], ignored: [{ reason: "untagged", repository: "harbor/alpine" }] });
  });

  it("reads the CloudEvents format, keyed by its id, and ignores its pulls", () => {
    const pull = fixture("harbor-pull-cloudevents-source-comment.json");
    expect(harbor(pull).ignored).toEqual([{ reason: "not_a_push", type: "harbor.artifact.pulled" }]);
    const push = { ...pull, type: "harbor.artifact.pushed" };
    push.data.resources[0] = { ...push.data.resources[0], tag: "1.36", resource_url: "harbor.dev/library/busybox:1.36" };
    const parsed = harbor(push);
    expect(parsed.events).toEqual([
      {
        eventKey: "harbor:src:4b2f89a6-548d-4c12-9993-a1f5790b97d2:0",
        image: { registry: "harbor.dev", repository: "library/busybox", tag: "1.36" },
        digestHint: "sha256:dde8e930c7b6a490f728e66292bc9bce42efc9bbb5278bae40e4f30f6e00fe8c",
      },
    ]);
  });

  it("ignores other Default-format events and names a missing resource_url", () => {
    expect(harbor({ ...fixture("harbor-push.json"), type: "DELETE_ARTIFACT" }).ignored[0]!.reason).toBe("not_a_push");
    const body = fixture("harbor-push.json");
    delete body.event_data.resources[0].resource_url;
    invalid(() => harbor(body), "event_data.resources[0].resource_url");
  });
});

describe("quay adapter", () => {
  const quay = (body: unknown) => parseQuayPush(body, { deliveryKey: "quay:src:1" });

  it("deploys each updated tag, from a list", () => {
    expect(quay(fixture("quay-repo-push.json"))).toEqual({
      events: [{ eventKey: "quay:src:1:0", image: { registry: "quay.io", repository: "dgangaia/test", tag: "latest" } }],
      ignored: [],
    });
  });

  it("reads the older object shape of updated_tags", () => {
    expect(quay(fixture("quay-repo-push-tag-object.json")).events.map((e) => e.image)).toEqual([
      { registry: "quay.io", repository: "mynamespace/repository", tag: "latest" },
    ]);
  });

  it("names a bad tag and a docker_url with no registry", () => {
    invalid(() => quay({ ...fixture("quay-repo-push.json"), updated_tags: ["ok", "-bad"] }), "updated_tags[1]");
    invalid(() => quay({ ...fixture("quay-repo-push.json"), docker_url: "dgangaia/test" }), "docker_url");
  });
});

describe("ecr adapter", () => {
  const ecr = (body: unknown) => parseEcrEvent(body, { sourceKey: "ecr:src" });

  it("deploys a successful push from the account's registry, keyed by the event id (the docs' digest is no digest: no hint)", () => {
    expect(ecr(fixture("ecr-image-push.json"))).toEqual({
      events: [
        {
          eventKey: "ecr:src:13cde686-328b-6117-af20-0e5566167482",
          image: { registry: "123456789012.dkr.ecr.us-west-2.amazonaws.com", repository: "my-repository-name", tag: "latest" },
        },
      ],
      ignored: [],
    });
  });

  it("ignores deletes, failures, other detail types and untagged pushes", () => {
    const base = fixture("ecr-image-push.json");
    expect(ecr({ ...base, detail: { ...base.detail, "action-type": "DELETE" } }).ignored[0]!.reason).toBe("not_a_push");
    expect(ecr({ ...base, detail: { ...base.detail, result: "FAILURE" } }).ignored[0]!.reason).toBe("not_a_push");
    expect(ecr({ ...base, "detail-type": "ECR Image Scan" }).ignored[0]!.reason).toBe("not_a_push");
    const untagged = { ...base, detail: { ...base.detail } };
    delete untagged.detail["image-tag"];
    expect(ecr(untagged).ignored[0]!.reason).toBe("untagged");
    invalid(() => ecr({ ...base, region: "evil.example/x" }), "region");
  });
});

describe("acr adapter", () => {
  const acr = (body: unknown) => parseAcrEvent(body, { sourceKey: "acr:src" });

  it("deploys the docs' push from request.host (the placeholder digest gives no hint)", () => {
    expect(acr(fixture("acr-push.json"))).toEqual({
      events: [
        {
          eventKey: "acr:src:cb8c3971-9adc-488b-xxxx-43cbb4974ff5",
          image: { registry: "myregistry.azurecr.io", repository: "hello-world", tag: "v1" },
        },
      ],
      ignored: [],
    });
  });

  it("ignores chart pushes, deletes and untagged pushes", () => {
    const base = fixture("acr-push.json");
    expect(acr({ ...base, action: "chart_push" }).ignored[0]!.reason).toBe("not_a_push");
    expect(acr({ ...base, target: { ...base.target, mediaType: "application/vnd.cncf.helm.config.v1+json" } }).ignored[0]!.reason).toBe(
      "not_a_manifest",
    );
    expect(acr({ ...base, target: { ...base.target, tag: undefined } }).ignored[0]!.reason).toBe("untagged");
  });
});

describe("gar adapter", () => {
  const gar = (body: unknown) => parseGarPush(body, { sourceKey: "gar:src" });
  const HELLO = "us-east1-docker.pkg.dev/my-project/my-repo/hello-world";
  const withData = (data: unknown, messageId = "1") => {
    const body = fixture("gar-pubsub-insert.json");
    body.message.data = typeof data === "string" ? data : Buffer.from(JSON.stringify(data)).toString("base64");
    body.message.messageId = messageId;
    return body;
  };

  it("deploys the docs' INSERT, keyed by the messageId, with the digest as hint", () => {
    expect(gar(fixture("gar-pubsub-insert.json"))).toEqual({
      events: [
        {
          eventKey: "gar:src:2070443601311540",
          image: { registry: "us-east1-docker.pkg.dev", repository: "my-project/my-repo/hello-world", tag: "1.1" },
          digestHint: "sha256:6ec128e26cd5f1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a",
        },
      ],
      ignored: [],
    });
  });

  it("ignores a DELETE and an untagged INSERT, and drops a digest of another image as hint", () => {
    expect(gar(withData({ action: "DELETE", tag: `${HELLO}:1.1` })).ignored).toEqual([{ reason: "not_a_push", action: "DELETE" }]);
    expect(gar(withData({ action: "INSERT", digest: `${HELLO}@${DIGEST}` })).ignored).toEqual([
      { reason: "untagged", repository: "my-project/my-repo/hello-world" },
    ]);
    const other = gar(withData({ action: "INSERT", tag: `${HELLO}:1.1`, digest: `us-east1-docker.pkg.dev/p/r/other@${DIGEST}` }));
    expect(other.events[0]).not.toHaveProperty("digestHint");
  });

  it("names the field of a hostile message", () => {
    invalid(() => gar(withData("not base64!")), "message.data");
    invalid(() => gar(withData(Buffer.from([0xff, 0xfe, 0x7b]).toString("base64"))), "message.data");
    invalid(() => gar(withData(Buffer.from("{").toString("base64"))), "message.data");
    invalid(() => gar(withData({ tag: `${HELLO}:1.1` })), "message.data.action");
    invalid(() => gar(withData({ action: "INSERT", tag: "hello-world:1.1" })), "message.data.tag");
    invalid(() => gar(withData({ action: "INSERT", tag: `${HELLO}:-bad` })), "message.data.tag");
    invalid(() => gar(withData({ action: "INSERT", tag: `${HELLO}:1.1` }, "../../x")), "message.messageId");
    invalid(() => gar({ subscription: "projects/p/subscriptions/s" }), "message");
  });
});
