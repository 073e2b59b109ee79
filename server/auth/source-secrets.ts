import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from "node:crypto";
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
 *   so a sealed value cannot be moved to another row. A copy of the database
 *   without the server's key hands out nothing.
 *
 * Every comparison is constant-time over fixed-length digests, so neither
 * the content nor the length of a guess shows in the timing.
 */

const HASH_PREFIX = "sha256:";
const SEALED_PREFIX = "aes256gcm:";

function sealingKey(serverSecret: string): Buffer {
  return Buffer.from(hkdfSync("sha256", Buffer.from(serverSecret, "utf8"), Buffer.alloc(0), "deployer source secrets v1", 32));
}

const sha256 = (data: string | Uint8Array) => createHash("sha256").update(data).digest();

/** Equal-length digests of both sides, compared in constant time. */
export function constantTimeEqual(a: string | Uint8Array, b: string | Uint8Array): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

export type SourceSecrets = ReturnType<typeof createSourceSecrets>;

export function createSourceSecrets(opts: { serverSecret: string; previousServerSecret?: string }) {
  const keys = [opts.serverSecret, opts.previousServerSecret].filter((s): s is string => !!s).map(sealingKey);

  function unseal(stored: string, sourceId: string): string | undefined {
    const [iv, tag, data] = stored.slice(SEALED_PREFIX.length).split(".");
    if (!iv || !tag || !data) return undefined;
    // After a rotation of the server's key, secrets sealed under the previous one still open while it is configured.
    for (const key of keys) {
      try {
        const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64url"));
        decipher.setAAD(Buffer.from(sourceId, "utf8"));
        decipher.setAuthTag(Buffer.from(tag, "base64url"));
        return Buffer.concat([decipher.update(Buffer.from(data, "base64url")), decipher.final()]).toString("utf8");
      } catch {
        // not this key
      }
    }
    return undefined;
  }

  return {
    /** A new secret: 32 random bytes, URL-safe (it may sit in a path). */
    generate(): string {
      return randomBytes(32).toString("base64url");
    },

    /** The form a secret is stored in, by how it is used. */
    store(secret: string, use: SecretUse, sourceId: string): string {
      if (use === "presented") return HASH_PREFIX + sha256(secret).toString("hex");
      const iv = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", keys[0]!, iv);
      cipher.setAAD(Buffer.from(sourceId, "utf8"));
      const data = Buffer.concat([cipher.update(secret, "utf8"), cipher.final()]);
      return SEALED_PREFIX + [iv, cipher.getAuthTag(), data].map((b) => b.toString("base64url")).join(".");
    },

    /** Whether a presented secret is the one stored (hashed). */
    matchesPresented(stored: string, presented: string): boolean {
      if (!stored.startsWith(HASH_PREFIX)) return false;
      const expected = Buffer.from(stored.slice(HASH_PREFIX.length), "hex");
      return timingSafeEqual(expected, sha256(presented));
    },

    /** Whether `signatureHex` is the HMAC-SHA256 of the raw body under the stored (sealed) secret. */
    matchesHmac(stored: string, sourceId: string, body: Uint8Array, signatureHex: string): boolean {
      if (!stored.startsWith(SEALED_PREFIX)) return false;
      const secret = unseal(stored, sourceId);
      if (secret === undefined) return false;
      const expected = createHmac("sha256", secret).update(body).digest("hex");
      return constantTimeEqual(expected, signatureHex.trim().toLowerCase());
    },
  };
}
