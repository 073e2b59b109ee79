import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";

/**
 * Values the server must be able to read back but a copy of its database
 * must not hand out: sealed with AES-256-GCM under a key derived (HKDF) from
 * the server's own key and a purpose, with associated data that ties each
 * sealed value to its row, so it cannot be moved to another. After a
 * rotation of the server's key (DEPLOYER_SECRET_PREVIOUS), values sealed
 * under the previous one still open while it is configured.
 */
const SEALED_PREFIX = "aes256gcm:";

export type Sealer = ReturnType<typeof createSealer>;

export function createSealer(opts: { serverSecret: string; previousServerSecret?: string; purpose: string }) {
  const keys = [opts.serverSecret, opts.previousServerSecret]
    .filter((s): s is string => !!s)
    .map((secret) => Buffer.from(hkdfSync("sha256", Buffer.from(secret, "utf8"), Buffer.alloc(0), opts.purpose, 32)));

  return {
    seal(value: string, associated: string): string {
      const iv = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", keys[0]!, iv);
      cipher.setAAD(Buffer.from(associated, "utf8"));
      const data = Buffer.concat([cipher.update(value, "utf8"), cipher.final()]);
      return SEALED_PREFIX + [iv, cipher.getAuthTag(), data].map((b) => b.toString("base64url")).join(".");
    },

    /** The value, or undefined when no configured key opens it (another server's key, or tampered with). */
    unseal(stored: string, associated: string): string | undefined {
      if (!stored.startsWith(SEALED_PREFIX)) return undefined;
      const [iv, tag, data] = stored.slice(SEALED_PREFIX.length).split(".");
      if (!iv || !tag || !data) return undefined;
      for (const key of keys) {
        try {
          const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64url"));
          decipher.setAAD(Buffer.from(associated, "utf8"));
          decipher.setAuthTag(Buffer.from(tag, "base64url"));
          return Buffer.concat([decipher.update(Buffer.from(data, "base64url")), decipher.final()]).toString("utf8");
        } catch {
          // not this key
        }
      }
      return undefined;
    },
  };
}
