import { randomFillSync } from "node:crypto";

const alphabet = "0123456789abcdefghjkmnpqrstvwxyz";

/**
 * Time-ordered ids (ULID layout, lowercase Crockford base32): sorting by id is
 * sorting by creation, which keeps keyset pagination on one indexed column.
 * Monotonic within a millisecond so two ids minted together still order.
 */
export function createIdGenerator(now: () => number = Date.now): (prefix: string) => string {
  let lastTime = -1;
  let lastRandom: Uint8Array = new Uint8Array(10);
  return (prefix) => {
    let time = now();
    if (time <= lastTime) {
      time = lastTime;
      lastRandom = increment(lastRandom);
    } else {
      lastTime = time;
      lastRandom = freshRandom();
    }
    return `${prefix}_${encodeTime(time)}${encodeRandom(lastRandom)}`;
  };
}

function encodeTime(time: number): string {
  let out = "";
  for (let i = 0; i < 10; i++) {
    out = alphabet[time % 32]! + out;
    time = Math.floor(time / 32);
  }
  return out;
}

/** 80 bits as 16 base32 digits, most significant first: two 40-bit halves, each exact in a double (no BigInt). */
export function encodeRandom(bytes: Uint8Array): string {
  return encode40(bytes, 0) + encode40(bytes, 5);
}

function encode40(bytes: Uint8Array, from: number): string {
  let value = 0;
  for (let i = from; i < from + 5; i++) value = value * 256 + bytes[i]!;
  let out = "";
  for (let i = 0; i < 8; i++) {
    out = alphabet[value % 32]! + out;
    value = Math.floor(value / 32);
  }
  return out;
}

/** Random bytes are drawn from the system a pool at a time: one call per 100 ids, not one per millisecond. */
const pool = new Uint8Array(1000);
let poolAt = pool.length;

function freshRandom(): Uint8Array {
  if (poolAt === pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  poolAt += 10;
  return pool.slice(poolAt - 10, poolAt);
}

function increment(bytes: Uint8Array): Uint8Array {
  const next = new Uint8Array(bytes);
  for (let i = next.length - 1; i >= 0; i--) {
    if (next[i]! < 255) {
      next[i]!++;
      return next;
    }
    next[i] = 0;
  }
  return next;
}
