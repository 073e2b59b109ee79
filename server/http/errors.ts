import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { Logger } from "pino";
import { AppError, statusOf, type ErrorCode } from "../domain/app-error.js";
import { isStorageFailure } from "../store/database.js";

export function errorBody(code: ErrorCode, message: string, requestId: string) {
  return { error: { code, message, requestId } };
}

export function respondError(c: Context, code: ErrorCode, message: string) {
  return c.json(errorBody(code, message, c.get("requestId") ?? "unknown"), statusOf(code));
}

/**
 * The one place an error becomes a response. Only AppError messages reach
 * the client; anything else is logged and answered with a generic 500, never
 * with its own message.
 */
export function createErrorHandler(log: Logger) {
  return (err: Error, c: Context) => {
    if (err instanceof AppError) return respondError(c, err.code, err.message);
    // Hono's own validators throw these: a malformed JSON body (400) or a content type a route does not take (415).
    if (err instanceof HTTPException && err.status === 400) return respondError(c, "BAD_REQUEST", `malformed request: ${err.message}`);
    if (err instanceof HTTPException && err.status === 415) {
      return respondError(c, "UNSUPPORTED_MEDIA_TYPE", `content type ${c.req.header("content-type") ?? "(none)"} is not JSON; send application/json`);
    }
    if (isClientGone(err, c)) {
      // The client hung up mid-request: its doing, not the server's. Nobody reads the answer.
      log.info({ requestId: c.get("requestId") }, "the client closed the connection before its request was read");
      return respondError(c, "BAD_REQUEST", "the connection closed before the request body arrived");
    }
    if (isStorageFailure(err)) {
      // The transaction rolled back whole: nothing of the request was recorded, and the sender may try again.
      log.error({ err, requestId: c.get("requestId") }, "the database could not be written (disk full or failing); answered 503");
      return respondError(
        c,
        "UNAVAILABLE",
        "the server cannot record anything now: its database's disk is full or failing; nothing was written, try again later",
      );
    }
    log.error({ err, requestId: c.get("requestId") }, "unhandled error");
    return respondError(c, "INTERNAL", "internal error; the request id is in the server log");
  };
}

/** Node's IncomingMessage fails a body read with `aborted` (ECONNRESET) when the socket closes first. */
function isClientGone(err: Error, c: Context): boolean {
  const code = (err as { code?: string }).code;
  return (code === "ECONNRESET" && err.message === "aborted") || code === "ERR_STREAM_PREMATURE_CLOSE" || c.req.raw.signal?.aborted === true;
}
