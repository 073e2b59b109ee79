import type { Logger } from "pino";
import { AppError, type ErrorCode } from "../domain/app-error.js";
import type { RejectionReason, SourceKind } from "../domain/source.js";
import type { Metrics } from "../metrics.js";
import type { SourceRecord } from "../store/source-store.js";
import type { RejectionLog } from "./rejection-log.js";

/** One source's part in a refusal: an OIDC token tried against several sources of its issuer is refused by each for its own reason. */
export interface Charge {
  source: SourceRecord;
  reason: RejectionReason;
  message: string;
}

/** A refused delivery, with the reason it is counted under (and, when several sources refused it, each one's). */
export class Rejected extends AppError {
  constructor(
    readonly reason: RejectionReason,
    code: ErrorCode,
    message: string,
    readonly charges?: Charge[],
  ) {
    super(code, message);
  }
}

export function reasonOf(err: unknown): RejectionReason | undefined {
  if (err instanceof Rejected) return err.reason;
  if (!(err instanceof AppError)) return undefined;
  if (err.code === "PAYLOAD_TOO_LARGE") return "payload_too_large";
  if (err.code === "UNSUPPORTED_MEDIA_TYPE") return "unsupported_media_type";
  if (err.code === "BAD_REQUEST" || err.code === "VALIDATION_FAILED") return "invalid_payload";
  return undefined;
}

export interface RefusalDeps {
  rejections: RejectionLog;
  metrics: Metrics;
  log: Logger;
}

/**
 * Counts a refused delivery per source and reason, in the metric and in the
 * source's summary, and logs it (the reason, never the proof). An unknown id
 * is not a source: counting it under the id would let anyone grow the label set.
 */
export function recordRefusal(deps: RefusalDeps, err: unknown, at: { kind: SourceKind; source?: SourceRecord; requestId: string }): void {
  const reason = reasonOf(err);
  if (!reason) return;
  const message = (err as Error).message;
  const charges: Array<Partial<Charge> & { reason: RejectionReason; message: string }> =
    err instanceof Rejected && err.charges?.length ? err.charges : [{ source: at.source, reason, message }];
  for (const charge of charges) {
    const known = charge.source && charge.reason !== "unknown_source" ? charge.source.id : "unknown";
    deps.metrics.sourceRejections.inc({ source: known, kind: at.kind, reason: charge.reason });
    if (charge.source) deps.rejections.record(charge.source.id, charge.reason, charge.message);
    deps.log.info({ source: known, kind: at.kind, reason: charge.reason, requestId: at.requestId }, "push source delivery refused");
  }
}
