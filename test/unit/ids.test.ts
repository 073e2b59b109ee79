import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createIdGenerator, encodeRandom } from "../../server/domain/ids.js";

const alphabet = "0123456789abcdefghjkmnpqrstvwxyz";

/** The 80 bits as one number, written out digit by digit: what the encoding must equal. */
function reference(bytes: Uint8Array): string {
  let bits = 0n;
  for (const b of bytes) bits = (bits << 8n) | BigInt(b);
  let out = "";
  for (let i = 0; i < 16; i++) {
    out = alphabet[Number(bits & 31n)]! + out;
    bits >>= 5n;
  }
  return out;
}

describe("ids", () => {
  it("encode the random part as the 80-bit number it is, for the extremes and for random bytes", () => {
    expect(encodeRandom(new Uint8Array(10))).toBe("0".repeat(16));
    expect(encodeRandom(new Uint8Array(10).fill(255))).toBe("z".repeat(16));
    expect(encodeRandom(Uint8Array.from([0, 0, 0, 0, 1, 0, 0, 0, 0, 0]))).toBe(reference(Uint8Array.from([0, 0, 0, 0, 1, 0, 0, 0, 0, 0])));
    for (let i = 0; i < 1000; i++) {
      const bytes = new Uint8Array(randomBytes(10));
      expect(encodeRandom(bytes)).toBe(reference(bytes));
    }
  });

  it("sort in the order they were made, within a millisecond and across them, and are unique", () => {
    let t = 1_700_000_000_000;
    const next = createIdGenerator(() => t);
    const ids: string[] = [];
    for (let i = 0; i < 3000; i++) {
      if (i % 7 === 0) t++;
      ids.push(next("dep"));
    }
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    for (const id of ids) expect(id).toMatch(/^dep_[0-9a-hjkmnp-tv-z]{26}$/);
  });
});
