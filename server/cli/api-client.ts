/**
 * The CLI's way to the REST API: `DEPLOYER_URL` and `DEPLOYER_TOKEN` (or
 * --url, --token), one request at a time, every failure a CliError with a
 * one-line message and the exit code scripts can tell apart. The token goes
 * into the Authorization header and nowhere else: no message prints it.
 */

/** 1: the deployment failed or was rolled back; 2: usage, configuration or an unreachable server; 3: the API refused the request. */
export const EXIT = { failed: 1, usage: 2, refused: 3 } as const;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    /** The HTTP status, when the API answered. */
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface ApiTarget {
  url: string;
  token: string;
}

/** The server's base URL and the token, from the flags or the environment; a clear error when either is missing. */
export function apiTarget(flags: { url?: string; token?: string }, env: NodeJS.ProcessEnv = process.env): ApiTarget {
  const raw = flags.url ?? env.DEPLOYER_URL;
  if (!raw) throw new CliError("no server: set DEPLOYER_URL (or pass --url), e.g. http://localhost:8080", EXIT.usage);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CliError(`DEPLOYER_URL is not a URL: ${JSON.stringify(raw.slice(0, 200))}`, EXIT.usage);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new CliError(`DEPLOYER_URL must be http:// or https://, not ${url.protocol}`, EXIT.usage);
  const token = flags.token ?? env.DEPLOYER_TOKEN;
  if (!token) throw new CliError("no token: set DEPLOYER_TOKEN (or pass --token) to an API token (npm run token -- api --scope …)", EXIT.usage);
  return { url: url.href.replace(/\/+$/, ""), token: token.trim() };
}

type Envelope = { error?: { code?: string; message?: string } };

/** Why a request could not be sent, in a line that names the server (never the token). */
function unreachable(target: ApiTarget, err: unknown): CliError {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const why = cause?.code ?? cause?.message ?? (err as Error).message;
  return new CliError(`cannot reach the deployer at ${target.url}: ${why}`, EXIT.usage);
}

/** An answer other than 2xx as a CliError: the server's own message, with what to do about a 401 or a 403. */
export async function refusal(res: Response): Promise<CliError> {
  const text = await res.text().catch(() => "");
  let error: Envelope["error"];
  try {
    error = (JSON.parse(text) as Envelope).error;
  } catch {
    error = undefined;
  }
  const detail = error?.message ?? (text.slice(0, 200) || res.statusText);
  const code = error?.code ? ` ${error.code}` : "";
  const hint =
    res.status === 401
      ? " (check DEPLOYER_TOKEN: an API token signed with this server's key, not expired)"
      : res.status === 403
        ? " (mint a token with that scope: npm run token -- api --scope …)"
        : "";
  return new CliError(`${res.status}${code}: ${detail}${hint}`, EXIT.refused, res.status);
}

/** Sends a request; resolves with the response when it is 2xx. */
export async function send(target: ApiTarget, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${target.token}`);
  let res: Response;
  try {
    res = await fetch(`${target.url}${path}`, { ...init, headers, redirect: "error" });
  } catch (err) {
    if ((err as Error).name === "AbortError") throw err;
    throw unreachable(target, err);
  }
  if (!res.ok) throw await refusal(res);
  return res;
}

/** A JSON request and its JSON answer. */
export async function call<T>(target: ApiTarget, method: string, path: string, body?: unknown): Promise<T> {
  const res = await send(target, path, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
  });
  return (await res.json()) as T;
}
