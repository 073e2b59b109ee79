import type { Context } from "hono";
import { AppError } from "../domain/app-error.js";

export const bodyLimitBytes = 1024 * 1024;

/**
 * No registry payload or API body nests deeper than a handful of levels. A
 * megabyte of `[[[[…` costs JSON.parse and every walk after it far more than
 * its size says (over a second of a blocked event loop), so it is refused
 * before parsing, by one linear scan.
 */
export const maxJsonDepth = 32;

export function assertJsonDepth(text: string): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxJsonDepth) throw new AppError("BAD_REQUEST", `the request body nests deeper than ${maxJsonDepth} levels`);
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
}

/**
 * Registries send JSON under vendor types (`…events.v1+json`, `…events.v2+json`,
 * `application/cloudevents+json`), so any `json` or `+json` type is JSON here;
 * a body with no type at all is read as JSON too, since Docker Hub does not
 * document the one it sends.
 */
export function isJsonContentType(header: string | undefined): boolean {
  if (!header) return true;
  const type = header.split(";")[0]!.trim().toLowerCase();
  return type === "application/json" || /^application\/[a-z0-9.+-]*\+json$/.test(type);
}

/** 415 unless the request says (or leaves open) that its body is JSON. */
export function assertJsonContentType(c: Context): void {
  if (!isJsonContentType(c.req.header("content-type"))) {
    throw new AppError("UNSUPPORTED_MEDIA_TYPE", `content type ${c.req.header("content-type")} is not JSON; send application/json`);
  }
}

/**
 * The raw body bytes, 1 MiB (or `limit`) at most, read without buffering more:
 * what an HMAC is computed over (a re-serialized parse would not match the sender's).
 */
export async function readBodyBytes(c: Context, limit = bodyLimitBytes): Promise<Buffer> {
  const length = c.req.header("content-length");
  const declared = Number(length ?? "0");
  if (declared > limit) throw tooLarge(limit);
  // With a Content-Length, HTTP framing stops the body at the declared size, so it can be read in one go
  // (the adapter's fast path, without a web stream); a chunked body is counted as it streams in.
  if (length !== undefined && Number.isSafeInteger(declared)) return Buffer.from(await c.req.raw.arrayBuffer());
  return readLimited(c.req.raw.body, limit);
}

/** Parses body text under the same guards as every JSON body: not empty, bounded nesting. */
export function parseJsonText(text: string): unknown {
  if (text.trim() === "") throw new AppError("BAD_REQUEST", "the request body is empty; a JSON body is required");
  assertJsonDepth(text);
  try {
    return JSON.parse(text);
  } catch {
    throw new AppError("BAD_REQUEST", "the request body is not valid JSON");
  }
}

/** UTF-8 as fetch's `text()` decodes it: a leading byte-order mark dropped, bad sequences replaced. */
export function decodeUtf8(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

/** Reads and parses the body, refusing more than 1 MiB without buffering it. */
export async function readJson(c: Context): Promise<unknown> {
  assertJsonContentType(c);
  return parseJsonText(decodeUtf8(await readBodyBytes(c)));
}

async function readLimited(stream: ReadableStream<Uint8Array> | null, limit: number): Promise<Buffer> {
  if (!stream) throw new AppError("BAD_REQUEST", "the request has no body; a JSON body is required");
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

function tooLarge(limit: number) {
  return new AppError("PAYLOAD_TOO_LARGE", `the request body is larger than ${limit} bytes`);
}
