import { AppError } from "../../domain/app-error.js";

/** `nextCursor` is opaque to clients: the id of the last row, wrapped so nobody builds one by hand. */
export const encodeCursor = (id: string) => Buffer.from(JSON.stringify({ before: id })).toString("base64url");
export function decodeCursor(cursor: string): string {
  try {
    const parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as { before?: unknown };
    if (typeof parsed.before === "string" && /^dep_[0-9a-z]{26}$/.test(parsed.before)) return parsed.before;
  } catch {
    // fall through to the error below
  }
  throw new AppError("VALIDATION_FAILED", "cursor: not a cursor returned by this API");
}
