import { and, asc, eq, inArray, isNotNull, sql } from "drizzle-orm";
import { canTransition, type DeploymentStatus, type TriggerKind } from "../domain/deployment.js";
import {
  TransitionRefusedError,
  type DeploymentEventRecord,
  type DeploymentRecord,
  type NewDeployment,
  type NewTrigger,
  type TriggerRecord,
} from "./records.js";
import type { Db } from "./database.js";
import { deploymentEvents, deployments, triggers } from "./schema.js";
import { createGroupCommit } from "./group-commit.js";
import { createStatementCache, definedValues, placeholdersFor, shapeKey } from "./statement-cache.js";

export * from "./records.js";

export type DeploymentPatch = Partial<
  Pick<
    DeploymentRecord,
    "status" | "message" | "digest" | "pinnedImage" | "previousImage" | "failureKind" | "startedAt" | "updateSentAt" | "finishedAt" | "serviceId"
  >
>;

export interface StoreClock {
  now(): number;
  newId(prefix: string): string;
}

export type DeploymentStore = ReturnType<typeof createDeploymentStore>;

export function createDeploymentStore(db: Db, clock: StoreClock) {
  const asDeployment = (row: typeof deployments.$inferSelect) => row as DeploymentRecord;
  const p = sql.placeholder;
  const cached = createStatementCache();
  const groupCommit = createGroupCommit((batch) => db.transaction(batch));
  const byId = db
    .select()
    .from(deployments)
    .where(eq(deployments.id, p("id")))
    .prepare();
  const statusById = db
    .select({ status: deployments.status })
    .from(deployments)
    .where(eq(deployments.id, p("id")))
    .prepare();
  const triggerByKey = db
    .select()
    .from(triggers)
    .where(and(eq(triggers.kind, p("kind")), eq(triggers.eventKey, p("eventKey"))))
    .prepare();
  const triggerById = db
    .select()
    .from(triggers)
    .where(eq(triggers.id, p("id")))
    .prepare();
  const unmatched = db
    .select()
    .from(triggers)
    .where(isNotNull(triggers.unmatchedSince))
    .orderBy(asc(triggers.unmatchedSince), asc(triggers.id))
    .limit(p("limit"))
    .prepare();
  const clearUnmatched = db
    .update(triggers)
    .set({ unmatchedSince: null })
    .where(and(eq(triggers.id, p("id")), isNotNull(triggers.unmatchedSince)))
    .returning({ id: triggers.id })
    .prepare();
  const insertEvent = db
    .insert(deploymentEvents)
    .values({ deploymentId: p("deploymentId"), at: p("at"), status: p("status"), message: p("message") })
    .prepare();
  const eventsOf = db
    .select({ at: deploymentEvents.at, status: deploymentEvents.status, message: deploymentEvents.message })
    .from(deploymentEvents)
    .where(eq(deploymentEvents.deploymentId, p("id")))
    .orderBy(asc(deploymentEvents.id))
    .prepare();

  function insertReturning<T>(
    table: typeof triggers | typeof deployments,
    name: string,
    values: Record<string, unknown>,
    ignoreConflict = false,
  ): T | undefined {
    const statement = cached(shapeKey(name, values), () => {
      const insert = db.insert(table).values(placeholdersFor(values) as never);
      return (ignoreConflict ? insert.onConflictDoNothing() : insert).returning().prepare();
    });
    return statement.get(values) as T | undefined;
  }

  function insertDeployments(triggerId: string, newDeployments: NewDeployment[], at: number): DeploymentRecord[] {
    return newDeployments.map((d) => {
      const { message, ...fields } = d;
      const values = definedValues({ id: clock.newId("dep"), triggerId, status: "queued", createdAt: at, message, ...fields });
      const row = insertReturning<typeof deployments.$inferSelect>(deployments, "deployment", values)!;
      insertEvent.run({ deploymentId: row.id, at, status: "queued", message });
      return asDeployment(row);
    });
  }

  function findDeployment(id: string): DeploymentRecord | undefined {
    const row = byId.get({ id });
    return row && asDeployment(row);
  }

  function getDeployment(id: string): DeploymentRecord {
    const found = findDeployment(id);
    if (!found) throw new Error(`deployment ${id} does not exist`);
    return found;
  }

  const store = {
    findDeployment,
    getDeployment,

    findTriggerByKey(kind: TriggerKind, eventKey: string): TriggerRecord | undefined {
      return triggerByKey.get({ kind, eventKey }) as TriggerRecord | undefined;
    },

    getTrigger(id: string): TriggerRecord | undefined {
      return triggerById.get({ id }) as TriggerRecord | undefined;
    },

    /**
     * Commits the trigger and its queued deployments in one transaction,
     * before the webhook is answered. A trigger whose event key was already
     * recorded writes nothing and returns the earlier one.
     */
    recordTrigger(
      trigger: NewTrigger,
      newDeployments: NewDeployment[],
      /** Runs inside the same transaction once the deployments exist (e.g. to hold the service). */
      alongside?: (deployments: DeploymentRecord[]) => void,
    ): { duplicate: false; trigger: TriggerRecord; deployments: DeploymentRecord[] } | { duplicate: true; trigger: TriggerRecord } {
      // The prepared statements run on the same connection, so inside this transaction.
      return db.transaction(() => {
        const at = clock.now();
        const { unmatched, ...fields } = trigger;
        const inserted = insertReturning<TriggerRecord>(
          triggers,
          "trigger",
          definedValues({ id: clock.newId("trg"), receivedAt: at, ...(unmatched ? { unmatchedSince: at } : {}), ...fields }),
          true,
        );
        if (!inserted) {
          const existing = triggerByKey.get({ kind: trigger.kind, eventKey: trigger.eventKey }) as TriggerRecord;
          return { duplicate: true as const, trigger: existing };
        }
        const rows = insertDeployments(inserted.id, newDeployments, at);
        alongside?.(rows);
        return { duplicate: false as const, trigger: inserted, deployments: rows };
      });
    },

    /** Pushes recorded while the engine did not answer, oldest first. */
    listUnmatched(limit: number): TriggerRecord[] {
      return unmatched.all({ limit }) as TriggerRecord[];
    },

    /**
     * The deployments of a push matched after it was recorded, in one
     * transaction with the end of its wait; `alongside` as in recordTrigger.
     * Returns undefined when it was matched already (by another caller).
     */
    recordMatch(triggerId: string, newDeployments: NewDeployment[], alongside?: (deployments: DeploymentRecord[]) => void) {
      return db.transaction(() => {
        if (!clearUnmatched.get({ id: triggerId })) return undefined;
        const rows = insertDeployments(triggerId, newDeployments, clock.now());
        alongside?.(rows);
        return rows;
      });
    },

    /**
     * recordTrigger, committed together with the others asked for in the
     * same turn of the event loop (store/group-commit.ts): what concurrent
     * webhooks use. Settles once the transaction has committed.
     */
    recordTriggerGrouped(trigger: NewTrigger, newDeployments: NewDeployment[], alongside?: (deployments: DeploymentRecord[]) => void) {
      return groupCommit(() => store.recordTrigger(trigger, newDeployments, alongside));
    },

    /** Applies a patch and appends the timeline entry that explains it, atomically. */
    transition(id: string, patch: DeploymentPatch, eventMessage?: string): DeploymentRecord {
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
      return db.transaction(() => {
        const current = statusById.get({ id }) as { status: DeploymentStatus } | undefined;
        if (!current) throw new Error(`deployment ${id} does not exist`);
        const to = patch.status ?? current.status;
        if (!canTransition(current.status, to)) throw new TransitionRefusedError(id, current.status, to);
        const at = clock.now();
        const row = update.get({ ...set, __id: id })!;
        if (eventMessage) insertEvent.run({ deploymentId: id, at, status: row.status, message: eventMessage });
        return asDeployment(row);
      });
    },

    addEvent(id: string, message: string): void {
      const current = statusById.get({ id });
      if (!current) throw new Error(`deployment ${id} does not exist`);
      insertEvent.run({ deploymentId: id, at: clock.now(), status: current.status, message });
    },

    listEvents(id: string): DeploymentEventRecord[] {
      return eventsOf.all({ id }) as DeploymentEventRecord[];
    },

    /** Deployments a crash may have interrupted, oldest first. */
    findUnfinished(): DeploymentRecord[] {
      return db
        .select()
        .from(deployments)
        .where(inArray(deployments.status, ["queued", "running"]))
        .orderBy(asc(deployments.id))
        .all()
        .map(asDeployment);
    },

    findByTrigger(triggerId: string): DeploymentRecord[] {
      return db.select().from(deployments).where(eq(deployments.triggerId, triggerId)).orderBy(asc(deployments.id)).all().map(asDeployment);
    },

    setCallbackState(triggerId: string, state: string): void {
      db.update(triggers).set({ callbackState: state }).where(eq(triggers.id, triggerId)).run();
    },
  };
  return store;
}
