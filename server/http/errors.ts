import type { Context } from "hono";
import type { Logger } from "pino";
import { AppError, statusOf, type ErrorCode } from "../domain/app-error.js";

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
    log.error({ err, requestId: c.get("requestId") }, "unhandled error");
    return respondError(c, "INTERNAL", "internal error; the request id is in the server log");
  };
}
