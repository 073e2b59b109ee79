import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { createSealer } from "./sealing.js";
import type { SecretUse } from "../domain/source.js";

/**
 * How a push source's secret is kept and checked.
 *
 * - A presented secret (a header or the URL path) is stored as its SHA-256:
 *   the secret is 32 random bytes, so a plain hash is as strong as a slow
 *   one, and the stored form is useless to whoever copies the database.
 * - An HMAC secret has to be usable, since the server recomputes the
 *   sender's signature; it is sealed with AES-256-GCM under a key derived
 *   (HKDF) from the server's own key, with the source id as associated data
 *   so a sealed value cannot be moved to another row (auth/sealing.ts). A
 *   copy of the database without the server's key hands out nothing.
 *
 * Every comparison is constant-time over fixed-length digests, so neither
 * the content nor the length of a guess shows in the timing.
 */

const HASH_PREFIX = "sha256:";

const sha256 = (data: string | Uint8Array) => createHash("sha256").update(data).digest();

/** Equal-length digests of both sides, compared in constant time. */
export function constantTimeEqual(a: string | Uint8Array, b: string | Uint8Array): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

export type SourceSecrets = ReturnType<typeof createSourceSecrets>;

export function createSourceSecrets(opts: { serverSecret: string; previousServerSecret?: string }) {
  const sealer = createSealer({ ...opts, purpose: "deployer source secrets v1" });

  return {
    /** A new secret: 32 random bytes, URL-safe (it may sit in a path). */
    generate(): string {
      return randomBytes(32).toString("base64url");
    },

    /** The form a secret is stored in, by how it is used. */
    store(secret: string, use: SecretUse, sourceId: string): string {
      if (use === "presented") return HASH_PREFIX + sha256(secret).toString("hex");
      return sealer.seal(secret, sourceId);
    },

    /** Whether a presented secret is the one stored (hashed). */
    matchesPresented(stored: string, presented: string): boolean {
      if (!stored.startsWith(HASH_PREFIX)) return false;
      const expected = Buffer.from(stored.slice(HASH_PREFIX.length), "hex");
      return timingSafeEqual(expected, sha256(presented));
    },

    /** Whether `signatureHex` is the HMAC-SHA256 of the raw body under the stored (sealed) secret. */
    matchesHmac(stored: string, sourceId: string, body: Uint8Array, signatureHex: string): boolean {
      const secret = sealer.unseal(stored, sourceId);
      if (secret === undefined) return false;
      const expected = createHmac("sha256", secret).update(body).digest("hex");
      return constantTimeEqual(expected, signatureHex.trim().toLowerCase());
    },
  };
}
