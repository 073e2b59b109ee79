import { asc, eq, inArray, sql } from "drizzle-orm";
import { canTransition, waitingStatuses, type DeploymentStatus } from "../domain/deployment.js";
import {
  TransitionRefusedError,
  type DeploymentEventRecord,
  type DeploymentRecord,
  type NewDeployment,
  type NewTrigger,
  type RecordHooks,
  type Coalesced,
  type TriggerRecord,
} from "./records.js";
import type { Db } from "./database.js";
import { deploymentEvents, deployments, triggers } from "./schema.js";
import { createCoalescedEvents } from "./coalesced-events.js";
import { createTriggerQueries } from "./trigger-queries.js";
import { createDeploymentLookups } from "./deployment-lookups.js";
import { createGroupCommit } from "./group-commit.js";
import { createDeploymentInserts } from "./deployment-inserts.js";
import { createEventFeed } from "./event-feed.js";
import { createStatementCache, definedValues, placeholdersFor, shapeKey } from "./statement-cache.js";
import { selectList } from "./raw-rows.js";

export * from "./records.js";

export type DeploymentPatch = Partial<
  Pick<
    DeploymentRecord,
    | "status"
    | "message"
    | "digest"
    | "pinnedImage"
    | "previousImage"
    | "failureKind"
    | "startedAt"
    | "updateSentAt"
    | "updateVersion"
    | "finishedAt"
    | "serviceId"
    | "waitUntil"
    | "approvedBy"
    | "approvedAt"
    | "supersededBy"
  >
>;

/** The columns of a deployment that decide whether a push is coalesced into it. */
const coalesceColumns = ["id", "status", "imageKey", "digest", "trigger"] as const;
export type CoalesceView = Pick<DeploymentRecord, (typeof coalesceColumns)[number]>;

export interface StoreClock {
  now(): number;
  newId(prefix: string): string;
}

export type DeploymentStore = ReturnType<typeof createDeploymentStore>;

export function createDeploymentStore(db: Db, clock: StoreClock) {
  const asDeployment = (row: typeof deployments.$inferSelect) => row as DeploymentRecord;
  const p = sql.placeholder;
  const cached = createStatementCache();
  const coalesced_ = createCoalescedEvents(db);
  const triggerQueries = createTriggerQueries(db);
  const feed = createEventFeed(db);
  /** Runs a write and, once it has committed (not while a caller's transaction is still open), tells the feed. */
  const published =
    <A extends unknown[], R>(write: (...args: A) => R) =>
    (...args: A): R => {
      const result = write(...args);
      feed.committed();
      return result;
    };
  /**
   * One transaction function for every write of the store, made once: better-sqlite3 makes a call inside an
   * open transaction a savepoint, so a write of a group commit that throws rolls back alone. (Drizzle's
   * `db.transaction` builds a transaction object and better-sqlite3's wrapper functions anew on every call:
   * several of them for each webhook.) A group commit's batch is one transaction of its own, asked of the connection
   * for each batch.
   */
  const atomic = db.$client.transaction((write: () => unknown) => write()) as unknown as <T>(write: () => T) => T;
  const groupCommit = createGroupCommit(
    (batch) => {
      db.$client.transaction(batch)();
      feed.committed();
    },
    { open: () => db.$client.inTransaction },
  );
  const byId = db.$client.prepare(`select ${selectList(deployments)} from deployments where id = ?`);
  // Read for every deployment in a pushed service's lane, inside the webhook's transaction: the few columns coalescing compares.
  const coalesceViewById = db.$client.prepare(`select ${selectList(deployments, coalesceColumns)} from deployments where id = ?`);
  const statusById = db
    .select({ status: deployments.status })
    .from(deployments)
    .where(eq(deployments.id, p("id")))
    .prepare();
  const { insertEvent, insertRow, insertForTrigger } = createDeploymentInserts(db, clock, coalesced_);
  const displacedBy = db.$client.prepare(`select ${selectList(deployments)} from deployments where superseded_by = ? order by id desc limit 1`);
  const handOverRow = db.$client.prepare("update deployments set superseded_by = ? where id = ? and status = 'superseded'");
  const eventsOf = db
    .select({ at: deploymentEvents.at, status: deploymentEvents.status, message: deploymentEvents.message })
    .from(deploymentEvents)
    .where(eq(deploymentEvents.deploymentId, p("id")))
    .orderBy(asc(deploymentEvents.id))
    .prepare();

  function findDeployment(id: string): DeploymentRecord | undefined {
    return byId.get(id) as DeploymentRecord | undefined;
  }

  function getDeployment(id: string): DeploymentRecord {
    const found = findDeployment(id);
    if (!found) throw new Error(`deployment ${id} does not exist`);
    return found;
  }

  const store = {
    findDeployment,
    getDeployment,

    /** What engine/coalesce.ts compares of a deployment. */
    findCoalesceView(id: string): CoalesceView | undefined {
      return coalesceViewById.get(id) as CoalesceView | undefined;
    },

    findTriggerByKey: triggerQueries.findByKey,
    getTrigger: triggerQueries.get,

    /**
     * Commits the trigger and its queued deployments in one transaction,
     * before the webhook is answered. A trigger whose event key was already
     * recorded writes nothing and returns the earlier one.
     */
    recordTrigger: published(function recordTrigger(
      trigger: NewTrigger,
      newDeployments: NewDeployment[],
      hooks: RecordHooks = {},
    ):
      | { duplicate: false; trigger: TriggerRecord; deployments: DeploymentRecord[]; coalesced: Coalesced[] }
      | { duplicate: true; trigger: TriggerRecord } {
      // The prepared statements run on the same connection, so inside this transaction.
      return atomic(() => {
        const at = clock.now();
        const { unmatched, ...fields } = trigger;
        const inserted = insertRow<TriggerRecord>(
          triggers,
          definedValues({ id: clock.newId("trg"), receivedAt: at, ...(unmatched ? { unmatchedSince: at } : {}), ...fields }),
          true,
        );
        if (!inserted) {
          const existing = triggerQueries.findByKey(trigger.kind, trigger.eventKey)!;
          return { duplicate: true as const, trigger: existing };
        }
        const { rows, coalesced } = insertForTrigger(inserted.id, newDeployments, at, hooks);
        return { duplicate: false as const, trigger: inserted, deployments: rows, coalesced };
      });
    }),

    listUnmatched: triggerQueries.listUnmatched,

    /** The newest deployment superseded by `id`, if any: what it replaced. */
    displacedBy(id: string): DeploymentRecord | undefined {
      return displacedBy.get(id) as DeploymentRecord | undefined;
    },

    /**
     * A superseded deployment whose place passes to another newer request (the one that superseded it deployed
     * nothing, and `newId` waits behind it), with the timeline entry that says so. It stays superseded.
     */
    handOver: published((olderId: string, newId: string, message: string): void => {
      atomic(() => {
        if (handOverRow.run(newId, olderId).changes === 0) throw new Error(`deployment ${olderId} is not superseded`);
        insertEvent.run({ deploymentId: olderId, at: clock.now(), status: "superseded", message });
      });
    }),

    /**
     * A deployment asked for again, for the push (or poller find) that asked for `earlier`, admitted by `hooks`
     * in the same transaction: `earlier` was superseded by a request that then deployed nothing.
     */
    askAgain: published((earlier: DeploymentRecord, message: string, hooks: RecordHooks = {}): DeploymentRecord[] =>
      atomic(
        () =>
          insertForTrigger(
            earlier.triggerId,
            [
              {
                service: earlier.service,
                serviceId: earlier.serviceId,
                image: earlier.image,
                imageKey: earlier.imageKey,
                digestHint: earlier.digest ?? earlier.digestHint ?? undefined,
                previousImage: earlier.previousImage ?? undefined,
                trigger: earlier.trigger,
                requestedBy: earlier.requestedBy,
                message,
              },
            ],
            clock.now(),
            hooks,
          ).rows,
      ),
    ),

    /**
     * The deployments of a push matched after it was recorded, in one
     * transaction with the end of its wait; `hooks` as in recordTrigger.
     * Returns undefined when it was matched already (by another caller).
     */
    recordMatch: published((triggerId: string, newDeployments: NewDeployment[], hooks: RecordHooks = {}) =>
      atomic(() => {
        if (!triggerQueries.clearUnmatched(triggerId)) return undefined;
        return insertForTrigger(triggerId, newDeployments, clock.now(), hooks);
      }),
    ),

    /**
     * recordTrigger, committed together with the others asked for in the
     * same turn of the event loop (store/group-commit.ts): what concurrent
     * webhooks use. Settles once the transaction has committed.
     */
    recordTriggerGrouped(trigger: NewTrigger, newDeployments: NewDeployment[], hooks: RecordHooks = {}) {
      return groupCommit(() => store.recordTrigger(trigger, newDeployments, hooks));
    },

    /** Applies a patch and appends the timeline entry that explains it, atomically. */
    transition: published((id: string, patch: DeploymentPatch, eventMessage?: string): DeploymentRecord => {
      const set = definedValues({ ...patch, ...(eventMessage && patch.message === undefined && patch.status ? { message: eventMessage } : {}) });
      if (Object.keys(set).length === 0) throw new Error(`transition of ${id}: nothing to change`);
      const update = cached(shapeKey("transition", set), () =>
        db
          .update(deployments)
          .set(placeholdersFor(set))
          .where(eq(deployments.id, p("__id")))
          .returning()
          .prepare(),
      );
      return atomic(() => {
        const current = statusById.get({ id }) as { status: DeploymentStatus } | undefined;
        if (!current) throw new Error(`deployment ${id} does not exist`);
        const to = patch.status ?? current.status;
        if (!canTransition(current.status, to)) throw new TransitionRefusedError(id, current.status, to);
        const at = clock.now();
        const row = update.get({ ...set, __id: id })!;
        if (eventMessage) insertEvent.run({ deploymentId: id, at, status: row.status, message: eventMessage });
        return asDeployment(row);
      });
    }),

    /**
     * Runs the writes of `write` (this store's, or another store's on the same connection) in one transaction, a
     * savepoint inside an open one; the feed hears of them once it commits.
     */
    atomically: published(<T>(write: () => T): T => atomic(write)),

    addEvent: published((id: string, message: string): void => {
      const current = statusById.get({ id });
      if (!current) throw new Error(`deployment ${id} does not exist`);
      insertEvent.run({ deploymentId: id, at: clock.now(), status: current.status, message });
    }),

    listEvents(id: string): DeploymentEventRecord[] {
      return eventsOf.all({ id }) as DeploymentEventRecord[];
    },

    /** Deployments not at their end yet (queued, running, or waiting for a gate): what a restart picks up, oldest first. */
    findUnfinished(): DeploymentRecord[] {
      return db
        .select()
        .from(deployments)
        .where(inArray(deployments.status, ["queued", "running", ...waitingStatuses]))
        .orderBy(asc(deployments.id))
        .all()
        .map(asDeployment);
    },

    /** The deployments a trigger asked for: its own, and those it was coalesced into. */
    findByTrigger(triggerId: string): DeploymentRecord[] {
      const into = coalesced_.targetsOf(triggerId);
      return db
        .select()
        .from(deployments)
        .where(sql`${deployments.triggerId} = ${triggerId} or ${deployments.id} in ${into}`)
        .orderBy(asc(deployments.id))
        .all()
        .map(asDeployment);
    },

    ...createDeploymentLookups(db),

    /** The pushes coalesced into a deployment: how many, and the latest `limit` of them. */
    coalescedInto: coalesced_.countAndLatest,
    /** Triggers coalesced into a deployment whose callback is still to be sent (it follows the deployment's end). */
    callbacksCoalescedInto: coalesced_.awaitingCallbackInto,

    setCallbackState: triggerQueries.setCallbackState,

    /** Every timeline row as an event, read back from the record and announced after each commit (store/event-feed.ts). */
    feed,
  };
  return store;
}
