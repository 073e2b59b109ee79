import { createHmac, generateKeyPairSync, sign as rsaSign } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createTokenService, TokenError, TokenInputError, type TokenErrorReason, type WebhookClaims } from "../../server/auth/tokens.js";

const SECRET = "current-secret-current-secret-current-secret";
const OLD_SECRET = "previous-secret-previous-secret-previous-secret";
const T0 = Date.UTC(2026, 0, 1);

const service = (opts: Partial<Parameters<typeof createTokenService>[0]> = {}) =>
  createTokenService({ secret: SECRET, dockerHubRegistry: "docker.io", now: () => T0, ...opts });

// Tokens built by hand (not through jose) so the tests can produce what the service itself never would.
const b64 = (value: unknown) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");

function hmacToken(payload: object, opts: { alg?: "HS256" | "HS512"; secret?: string } = {}): string {
  const alg = opts.alg ?? "HS256";
  const input = `${b64({ alg, typ: "JWT" })}.${b64(payload)}`;
  const mac = createHmac(alg === "HS256" ? "sha256" : "sha512", opts.secret ?? SECRET)
    .update(input)
    .digest("base64url");
  return `${input}.${mac}`;
}

/** A correctly signed HS256 JWS whose payload is not a JWT claims set. */
function signedRaw(payload: string): string {
  const input = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(payload)}`;
  return `${input}.${createHmac("sha256", SECRET).update(input).digest("base64url")}`;
}

function rs256Token(payload: object): string {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const input = `${b64({ alg: "RS256", typ: "JWT" })}.${b64(payload)}`;
  return `${input}.${rsaSign("sha256", Buffer.from(input), privateKey).toString("base64url")}`;
}

const iat = Math.floor(T0 / 1000);
const webhookPayload = { sub: "ci", repos: ["acme/web"], aud: "deployer:webhook", iat };
const apiPayload = { sub: "ops", scope: "deployments:read", aud: "deployer:api", iat };

async function rejection(promise: Promise<unknown>): Promise<TokenError> {
  const err = await promise.then(
    (value) => {
      throw new Error(`expected a TokenError, but the token verified as ${JSON.stringify(value)}`);
    },
    (e: unknown) => e,
  );
  expect(err, String(err)).toBeInstanceOf(TokenError);
  return err as TokenError;
}

async function expectReason(promise: Promise<unknown>, reason: TokenErrorReason, token?: string) {
  const err = await rejection(promise);
  expect(err.reason, err.message).toBe(reason);
  if (token) expect(err.message, "messages never echo the token").not.toContain(token);
  return err;
}

describe("signing and verifying", () => {
  it("signs a webhook token whose claims survive verification, with iat and a random jti", async () => {
    const tokens = service();
    const token = await tokens.signWebhookToken({ sub: "ci", repos: ["acme/web", "127.0.0.1:5000/acme/*"], services: ["web"], expiresIn: "90d" });
    const header = JSON.parse(Buffer.from(token.split(".")[0]!, "base64url").toString());
    const payload = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString());
    expect(header, JSON.stringify(header)).toEqual({ alg: "HS256", typ: "JWT" });
    expect(payload, JSON.stringify(payload)).toMatchObject({ aud: "deployer:webhook", iat, exp: iat + 90 * 86_400 });
    expect(payload.jti, JSON.stringify(payload)).toMatch(/^[0-9a-f-]{36}$/);

    const claims = await tokens.verifyWebhookToken(token);
    expect(claims, JSON.stringify(claims)).toEqual({
      sub: "ci",
      repos: ["acme/web", "127.0.0.1:5000/acme/*"],
      services: ["web"],
      jti: payload.jti,
      exp: iat + 90 * 86_400,
    });
    const again = await tokens.signWebhookToken({ sub: "ci", repos: ["acme/web"] });
    expect((await tokens.verifyWebhookToken(again)).jti).not.toBe(payload.jti);
  });

  it("leaves exp out when no expiresIn is given", async () => {
    const tokens = service();
    const claims = await tokens.verifyApiToken(await tokens.signApiToken({ sub: "ops", scopes: ["deployments:read"] }));
    expect(claims.exp, JSON.stringify(claims)).toBeUndefined();
  });

  it("signs an api token whose space-separated scope comes back as a list", async () => {
    const tokens = service();
    const token = await tokens.signApiToken({ sub: "ops", scopes: ["deployments:read", "deployments:write"], expiresIn: "12h" });
    const payload = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString());
    expect(payload.scope, JSON.stringify(payload)).toBe("deployments:read deployments:write");
    const claims = await tokens.verifyApiToken(token);
    expect(claims, JSON.stringify(claims)).toMatchObject({ sub: "ops", scopes: ["deployments:read", "deployments:write"], exp: iat + 12 * 3600 });
  });

  it("accepts any HS256 JWT with the documented claims, not only the ones it signed", async () => {
    const claims = await service().verifyWebhookToken(hmacToken(webhookPayload));
    expect(claims, JSON.stringify(claims)).toEqual({ sub: "ci", repos: ["acme/web"] });
  });

  it("refuses to sign bad patterns, scopes and durations", async () => {
    const tokens = service();
    await expect(tokens.signWebhookToken({ sub: "ci", repos: ["Acme/Web"] })).rejects.toBeInstanceOf(TokenInputError);
    await expect(tokens.signWebhookToken({ sub: "ci", repos: ["acme/web:latest"] })).rejects.toThrow(/without tag/);
    await expect(tokens.signWebhookToken({ sub: "ci", repos: ["*.example.com/web"] })).rejects.toThrow(/registry/);
    await expect(tokens.signWebhookToken({ sub: "ci", repos: [] })).rejects.toThrow(/repos/);
    await expect(tokens.signWebhookToken({ sub: "ci", repos: ["acme/web"], expiresIn: "9x" })).rejects.toThrow(/expires/);
    await expect(tokens.signApiToken({ sub: "ops", scopes: ["admin" as never] })).rejects.toThrow(/unknown scope "admin"/);
  });
});

describe("rejecting tokens", () => {
  it("rejects alg none", async () => {
    const token = `${b64({ alg: "none", typ: "JWT" })}.${b64(webhookPayload)}.`;
    await expectReason(service().verifyWebhookToken(token), "wrong_algorithm", token);
  });

  it("rejects HS512 even with the right key", async () => {
    const token = hmacToken(webhookPayload, { alg: "HS512" });
    await expectReason(service().verifyWebhookToken(token), "wrong_algorithm", token);
  });

  it("rejects an RS256 token", async () => {
    const token = rs256Token(apiPayload);
    await expectReason(service().verifyApiToken(token), "wrong_algorithm", token);
  });

  it("rejects a token for the other audience, either way round", async () => {
    const tokens = service();
    const webhook = await tokens.signWebhookToken({ sub: "ci", repos: ["acme/web"] });
    const api = await tokens.signApiToken({ sub: "ops", scopes: ["deployments:write"] });
    await expectReason(tokens.verifyApiToken(webhook), "wrong_audience", webhook);
    await expectReason(tokens.verifyWebhookToken(api), "wrong_audience", api);
    await expectReason(tokens.verifyWebhookToken(hmacToken({ ...webhookPayload, aud: "someone-else" })), "wrong_audience");
    await expectReason(tokens.verifyWebhookToken(hmacToken({ sub: "ci", repos: ["acme/web"] })), "wrong_audience");
  });

  it("rejects an expired token, and accepts it while still valid", async () => {
    const token = await service().signWebhookToken({ sub: "ci", repos: ["acme/web"], expiresIn: "1h" });
    await expect(service({ now: () => T0 + 59 * 60_000 }).verifyWebhookToken(token)).resolves.toMatchObject({ sub: "ci" });
    const err = await expectReason(service({ now: () => T0 + 2 * 3_600_000 }).verifyWebhookToken(token), "expired", token);
    expect(err.message).toBe("the token has expired");
    // Expired is expired: a skew allowance would let a token with `--expires 30s` work for a minute.
    for (const late of [1, 5_000, 25_000]) {
      await expectReason(service({ now: () => T0 + 3_600_000 + late }).verifyWebhookToken(token), "expired", token);
    }
  });

  it("keeps a verified token only until it expires, on the same service", async () => {
    let now = T0;
    const tokens = service({ now: () => now });
    const token = await tokens.signWebhookToken({ sub: "ci", repos: ["acme/web"], expiresIn: "1h" });
    await expect(tokens.verifyWebhookToken(token)).resolves.toMatchObject({ sub: "ci" });
    now = T0 + 60 * 60_000 - 1_000; // a second before its exp: still valid, from the cache
    await expect(tokens.verifyWebhookToken(token)).resolves.toMatchObject({ sub: "ci" });
    now = T0 + 60 * 60_000; // at its exp: expired, no tolerance
    const err = await expectReason(tokens.verifyWebhookToken(token), "expired", token);
    expect(err.message).toBe("the token has expired");
  });

  it("does not let a verified token pass for the other audience, nor a tampered copy pass as verified", async () => {
    const tokens = service();
    const token = await tokens.signWebhookToken({ sub: "ci", repos: ["acme/web"] });
    await tokens.verifyWebhookToken(token);
    await expectReason(tokens.verifyApiToken(token), "wrong_audience", token);
    const [h, p, sig] = token.split(".");
    const tampered = `${h}.${b64({ ...JSON.parse(Buffer.from(p!, "base64url").toString()), repos: ["*/*"] })}.${sig}`;
    await expectReason(tokens.verifyWebhookToken(tampered), "bad_signature", tampered);
  });

  it("rejects a token signed with another key", async () => {
    const token = hmacToken(webhookPayload, { secret: "some-other-secret-some-other-secret-123" });
    await expectReason(service().verifyWebhookToken(token), "bad_signature", token);
  });

  it("accepts tokens signed with the previous key during a rotation, and only then", async () => {
    const oldToken = await service({ secret: OLD_SECRET }).signApiToken({ sub: "ops", scopes: ["deployments:read"] });
    const rotating = service({ previousSecret: OLD_SECRET });
    await expect(rotating.verifyApiToken(oldToken)).resolves.toMatchObject({ sub: "ops" });
    await expect(rotating.verifyApiToken(await rotating.signApiToken({ sub: "new", scopes: ["deployments:read"] }))).resolves.toMatchObject({
      sub: "new",
    });
    await expectReason(service().verifyApiToken(oldToken), "bad_signature", oldToken);
    const stranger = hmacToken(apiPayload, { secret: "a-third-secret-a-third-secret-a-third" });
    await expectReason(rotating.verifyApiToken(stranger), "bad_signature", stranger);
  });

  it("reports a missing token and malformed strings", async () => {
    const tokens = service();
    await expectReason(tokens.verifyWebhookToken(""), "missing");
    await expectReason(tokens.verifyWebhookToken("   "), "missing");
    for (const token of ["abc", "a.b.c", "not a jwt", signedRaw("not json"), signedRaw("[1,2]"), `${hmacToken(webhookPayload)}.extra`]) {
      await expectReason(tokens.verifyWebhookToken(token), "malformed", token);
    }
  });

  it("rejects validly signed tokens whose claims have the wrong shape, naming the claim", async () => {
    const tokens = service();
    const cases: [object, RegExp][] = [
      [{ ...webhookPayload, repos: "acme/web" }, /repos: /],
      [{ ...webhookPayload, repos: [] }, /repos: /],
      [{ ...webhookPayload, sub: undefined }, /sub: /],
      [{ ...webhookPayload, services: "web" }, /services: /],
      [{ ...webhookPayload, repos: ["acme/web", "Not A Pattern"] }, /repos\[1\]: /],
      [{ ...webhookPayload, exp: "tomorrow" }, /exp/],
    ];
    for (const [payload, pattern] of cases) {
      const err = await expectReason(tokens.verifyWebhookToken(hmacToken(payload)), "invalid_claims");
      expect(err.message, JSON.stringify(payload)).toMatch(pattern);
    }
    for (const scope of [["deployments:read"], "", "deployments:read admin"]) {
      const err = await expectReason(tokens.verifyApiToken(hmacToken({ ...apiPayload, scope })), "invalid_claims");
      expect(err.message, JSON.stringify(scope)).toMatch(/scope/);
    }
  });
});

describe("repository patterns", () => {
  const allowed = (repos: string[], image: string, dockerHubRegistry = "docker.io") => {
    const slash = image.indexOf("/");
    const target = { registry: image.slice(0, slash), repository: image.slice(slash + 1) };
    return service({ dockerHubRegistry }).repoAllowed({ sub: "ci", repos }, target);
  };

  it.each([
    [["acme/web"], "docker.io/acme/web", true],
    [["acme/web"], "docker.io/acme/web2", false],
    [["acme/web"], "127.0.0.1:5000/acme/web", false],
    [["nginx"], "docker.io/library/nginx", true],
    [["library/nginx"], "docker.io/library/nginx", true],
    [["docker.io/nginx"], "docker.io/library/nginx", true],
    [["index.docker.io/acme/web"], "docker.io/acme/web", true],
    [["127.0.0.1:5000/acme/*"], "127.0.0.1:5000/acme/web", true],
    [["127.0.0.1:5000/acme/*"], "127.0.0.1:5000/acme/x/y", false],
    [["127.0.0.1:5000/acme/*"], "127.0.0.1:5001/acme/web", false],
    [["127.0.0.1:5000/acme/*"], "docker.io/acme/web", false],
    [["acme/*"], "docker.io/acme/web", true],
    [["acme/*"], "docker.io/acme/x/y", false],
    [["acme/*"], "docker.io/acmecorp/web", false],
    [["acme/web-*"], "docker.io/acme/web-api", true],
    [["acme/web-*"], "docker.io/acme/api", false],
    [["*/web"], "docker.io/acme/web", true],
    [["acme/web.api"], "docker.io/acme/webxapi", false],
    [["acme/api", "acme/web"], "docker.io/acme/web", true],
    [["Registry.Example.com:5000/acme/*"], "registry.example.com:5000/acme/web", true],
    [["registry.example.com:5000/acme/*"], "Registry.Example.com:5000/acme/web", true],
  ])("%j against %s is %s", (repos, image, expected) => {
    expect(allowed(repos, image)).toBe(expected);
  });

  it("reads registry-less patterns against DEPLOYER_DOCKERHUB_REGISTRY, adding library/ only on docker.io", () => {
    expect(allowed(["acme/web"], "127.0.0.1:5000/acme/web", "127.0.0.1:5000")).toBe(true);
    expect(allowed(["acme/web"], "docker.io/acme/web", "127.0.0.1:5000")).toBe(false);
    expect(allowed(["nginx"], "127.0.0.1:5000/nginx", "127.0.0.1:5000")).toBe(true);
    expect(allowed(["nginx"], "127.0.0.1:5000/library/nginx", "127.0.0.1:5000")).toBe(false);
  });

  it("grants nothing for a pattern that is not a repository name", () => {
    expect(allowed(["ACME/WEB"], "docker.io/acme/web")).toBe(false);
    expect(allowed(["acme/Web"], "docker.io/acme/web")).toBe(false);
  });
});

describe("service scope", () => {
  const claims = (services?: string[]): WebhookClaims => ({ sub: "ci", repos: ["acme/web"], ...(services ? { services } : {}) });

  it("allows any service when the token has no services claim", () => {
    expect(service().serviceAllowed(claims(), "web")).toBe(true);
  });

  it("allows only the listed services otherwise", () => {
    expect(service().serviceAllowed(claims(["web", "worker"]), "worker")).toBe(true);
    expect(service().serviceAllowed(claims(["web"]), "web-canary")).toBe(false);
    expect(service().serviceAllowed(claims([]), "web")).toBe(false);
  });

  it("carries the services claim through signing and verification", async () => {
    const tokens = service();
    const verified = await tokens.verifyWebhookToken(await tokens.signWebhookToken({ sub: "ci", repos: ["acme/web"], services: ["stack_web"] }));
    expect(tokens.serviceAllowed(verified, "stack_web")).toBe(true);
    expect(tokens.serviceAllowed(verified, "stack_db")).toBe(false);
  });
});
