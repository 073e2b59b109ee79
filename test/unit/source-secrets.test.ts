import { describe, expect, it } from "vitest";
import { createSourceSecrets } from "../../server/auth/source-secrets.js";

const serverSecret = "a-server-secret-that-is-at-least-32-bytes-long";
const body = new TextEncoder().encode("Hello, World!");
// GitHub's documented test vector ("Validating webhook deliveries").
const vector = { secret: "It's a Secret to Everybody", signature: "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17" };

describe("source secrets", () => {
  it("verifies GitHub's documented signature through the sealed secret", () => {
    const secrets = createSourceSecrets({ serverSecret });
    const stored = secrets.store(vector.secret, "hmac", "src_a");
    expect(stored).not.toContain(vector.secret);
    expect(secrets.matchesHmac(stored, "src_a", body, vector.signature)).toBe(true);
    expect(secrets.matchesHmac(stored, "src_a", body, vector.signature.toUpperCase())).toBe(true);
    expect(secrets.matchesHmac(stored, "src_a", body, vector.signature.slice(1))).toBe(false);
    expect(secrets.matchesHmac(stored, "src_a", new TextEncoder().encode("Hello, World?"), vector.signature)).toBe(false);
  });

  it("binds a sealed secret to its source and to the server's key", () => {
    const stored = createSourceSecrets({ serverSecret }).store(vector.secret, "hmac", "src_a");
    expect(createSourceSecrets({ serverSecret }).matchesHmac(stored, "src_b", body, vector.signature)).toBe(false);
    expect(
      createSourceSecrets({ serverSecret: "another-server-secret-of-enough-length-xx" }).matchesHmac(stored, "src_a", body, vector.signature),
    ).toBe(false);
    // After a rotation of the server's key, the previous one still opens it.
    const rotated = createSourceSecrets({ serverSecret: "another-server-secret-of-enough-length-xx", previousServerSecret: serverSecret });
    expect(rotated.matchesHmac(stored, "src_a", body, vector.signature)).toBe(true);
  });

  it("keeps a presented secret as a hash that matches only the secret itself", () => {
    const secrets = createSourceSecrets({ serverSecret });
    const secret = secrets.generate();
    const stored = secrets.store(secret, "presented", "src_a");
    expect(stored).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(secrets.matchesPresented(stored, secret)).toBe(true);
    expect(secrets.matchesPresented(stored, `${secret} `)).toBe(false);
    expect(secrets.matchesPresented(stored, stored)).toBe(false);
    // A hash is never accepted as an HMAC key, nor a sealed value as a presented secret.
    expect(secrets.matchesHmac(stored, "src_a", body, "00")).toBe(false);
    expect(secrets.matchesPresented(secrets.store(secret, "hmac", "src_a"), secret)).toBe(false);
  });
});
