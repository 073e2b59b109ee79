import { isTerminal, type DeploymentStatus, type TriggerKind } from "../domain/deployment.js";
import type { Db } from "./database.js";

/**
 * The record as a feed: every row of `deployment_events` is one event, and
 * its autoincrement id the cursor. A deployment's first row is its creation
 * (`deployment`), the row that first carries a final status its end
 * (`final`), every other row a `timeline` entry. One writer connection
 * commits transactions one after another, so ids are committed in order:
 * whoever has read up to id N and is told of every commit after misses
 * nothing.
 *
 * `committed()` is called by the store after each of its transactions
 * commits (never inside one, so a rolled-back row is never announced);
 * while anyone listens it reads the rows committed since the last call and
 * hands them over.
 */
export type FeedKind = "deployment" | "timeline" | "final";

export interface FeedEvent {
  id: number;
  kind: FeedKind;
  deploymentId: string;
  service: string;
  at: number;
  status: DeploymentStatus;
  message: string;
  image: string;
  /** The `repo:tag@digest` the update sent, once it was sent: at a `final` of `succeeded`, what the service runs. */
  pinnedImage: string | null;
  trigger: TriggerKind;
  requestedBy: string;
  createdAt: number;
}

interface Row extends Omit<FeedEvent, "kind"> {
  firstId: number;
  previousStatus: DeploymentStatus | null;
}

const columns = `e.id, e.deployment_id as deploymentId, d.service, e.at, e.status, e.message, d.image, d.pinned_image as pinnedImage, d.trigger,
  d.requested_by as requestedBy, d.created_at as createdAt,
  (select min(f.id) from deployment_events f where f.deployment_id = e.deployment_id) as firstId,
  (select p.status from deployment_events p where p.deployment_id = e.deployment_id and p.id < e.id order by p.id desc limit 1) as previousStatus
  from deployment_events e join deployments d on d.id = e.deployment_id`;

function toEvent({ firstId, previousStatus, ...row }: Row): FeedEvent {
  const kind: FeedKind =
    row.id === firstId ? "deployment" : isTerminal(row.status) && (previousStatus === null || !isTerminal(previousStatus)) ? "final" : "timeline";
  return { ...row, kind };
}

export type EventFeed = ReturnType<typeof createEventFeed>;

export function createEventFeed(db: Db) {
  const sqlite = db.$client;
  const after = sqlite.prepare(`select ${columns} where e.id > ? order by e.id limit ?`);
  const afterOf = sqlite.prepare(`select ${columns} where e.deployment_id = ? and e.id > ? order by e.id limit ?`);
  const latest = sqlite.prepare("select coalesce(max(id), 0) as id from deployment_events");
  const listeners = new Set<(events: FeedEvent[]) => void>();
  let published = 0;

  const latestId = () => (latest.get() as { id: number }).id;

  /** Up to `limit` events after `cursor`, oldest first; of one deployment when `deploymentId` is given. */
  function readAfter(cursor: number, opts: { deploymentId?: string; limit?: number } = {}): FeedEvent[] {
    const limit = opts.limit ?? 200;
    const rows = opts.deploymentId ? afterOf.all(opts.deploymentId, cursor, limit) : after.all(cursor, limit);
    return (rows as Row[]).map(toEvent);
  }

  return {
    readAfter,
    latestId,
    /** Every event committed from now on, in order; returns the unsubscribe. */
    subscribe(listener: (events: FeedEvent[]) => void): () => void {
      if (listeners.size === 0) published = latestId();
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    committed(): void {
      if (listeners.size === 0 || sqlite.inTransaction) return;
      for (;;) {
        const events = readAfter(published, { limit: 500 });
        if (events.length === 0) return;
        published = events.at(-1)!.id;
        for (const listener of listeners) {
          try {
            listener(events);
          } catch {
            // A listener's trouble must not turn a committed write into an error for its caller.
          }
        }
      }
    },
  };
}
