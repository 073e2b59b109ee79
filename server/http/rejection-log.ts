import type { RejectionReason } from "../domain/source.js";

/**
 * The recent rejected deliveries of each source, for `GET /api/sources/:id`:
 * counts by reason and the last few reasons with their times. Kept in memory
 * and bounded (a fixed number of entries per source, sources only once they
 * exist), so a flood of bad deliveries costs no disk writes and no growth;
 * a restart starts the summary afresh, while the metric keeps the totals.
 */

export const RECENT_REJECTIONS = 20;

export interface Rejection {
  at: number;
  reason: RejectionReason;
  message: string;
}

export interface RejectionSummary {
  counts: Partial<Record<RejectionReason, number>>;
  recent: Rejection[];
}

export type RejectionLog = ReturnType<typeof createRejectionLog>;

export function createRejectionLog(now: () => number) {
  const bySource = new Map<string, RejectionSummary>();
  return {
    record(sourceId: string, reason: RejectionReason, message: string): void {
      let summary = bySource.get(sourceId);
      if (!summary) bySource.set(sourceId, (summary = { counts: {}, recent: [] }));
      summary.counts[reason] = (summary.counts[reason] ?? 0) + 1;
      summary.recent.unshift({ at: now(), reason, message: message.slice(0, 300) });
      summary.recent.length = Math.min(summary.recent.length, RECENT_REJECTIONS);
    },

    /** Newest first. */
    summaryOf(sourceId: string): RejectionSummary {
      const summary = bySource.get(sourceId);
      return summary ? { counts: { ...summary.counts }, recent: [...summary.recent] } : { counts: {}, recent: [] };
    },
  };
}
