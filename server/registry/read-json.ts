import { RegistryError } from "./registry-port.js";

/** Distribution refuses manifests above 4 MiB; no answer the server reads from a registry needs more. */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

/**
 * A registry's answer body (`what`, for the messages), read chunk by chunk and given up on past `max` bytes,
 * before it is all in memory: a declared Content-Length above it is refused unread. `unreachable` when the body
 * breaks off, `protocol` when it is bigger.
 */
export async function readRegistryBody(res: Response, registry: string, what: string, max = MAX_BODY_BYTES): Promise<Buffer> {
  const tooBig = () => new RegistryError("protocol", `${what} exceeds ${max / (1024 * 1024)} MiB`);
  const declared = Number(res.headers.get("content-length") ?? Number.NaN);
  if (declared > max) {
    await res.body?.cancel().catch(() => undefined);
    throw tooBig();
  }
  if (!res.body) return Buffer.alloc(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > max) {
        await reader.cancel().catch(() => undefined);
        throw tooBig();
      }
      chunks.push(value);
    }
  } catch (err) {
    if (err instanceof RegistryError) throw err;
    throw new RegistryError("unreachable", `registry ${registry} unreachable while sending ${what}: ${(err as Error).message}`);
  }
  return Buffer.concat(chunks, size);
}

/** A registry's JSON answer, read as readRegistryBody reads it: `protocol` when it is not JSON. */
export async function readRegistryJson(res: Response, registry: string, what: string, max = MAX_BODY_BYTES): Promise<unknown> {
  const body = await readRegistryBody(res, registry, what, max);
  try {
    return JSON.parse(body.toString("utf8")) as unknown;
  } catch {
    throw new RegistryError("protocol", `registry ${registry} answered ${what} with something other than JSON`);
  }
}
