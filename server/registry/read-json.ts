import { RegistryError } from "./registry-port.js";

/** Distribution refuses manifests above 4 MiB; no answer the server reads from a registry needs more. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

/**
 * A registry's JSON answer (`what`, for the messages), read within 4 MiB: `unreachable` when the body breaks off,
 * `protocol` when it is bigger or not JSON.
 */
export async function readRegistryJson(res: Response, registry: string, what: string): Promise<unknown> {
  const text = await res.text().catch((err: unknown) => {
    throw new RegistryError("unreachable", `registry ${registry} unreachable while sending ${what}: ${(err as Error).message}`);
  });
  if (text.length > MAX_BODY_BYTES) throw new RegistryError("protocol", `${what} exceeds 4 MiB`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new RegistryError("protocol", `registry ${registry} answered ${what} with something other than JSON`);
  }
}
