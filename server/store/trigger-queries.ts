import { and, asc, eq, isNotNull, sql } from "drizzle-orm";
import type { TriggerKind } from "../domain/deployment.js";
import type { Db } from "./database.js";
import type { TriggerRecord } from "./records.js";
import { selectList } from "./raw-rows.js";
import { triggers } from "./schema.js";

/** Reads and small writes of triggers: by event key, by id, the pushes waiting to be matched, the callback's state. */
export function createTriggerQueries(db: Db) {
  const p = sql.placeholder;
  // Every webhook asks this first (store/raw-rows.ts).
  const byKey = db.$client.prepare(`select ${selectList(triggers)} from triggers where kind = ? and event_key = ?`);
  const byId = db
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

  return {
    findByKey(kind: TriggerKind, eventKey: string): TriggerRecord | undefined {
      return byKey.get(kind, eventKey) as TriggerRecord | undefined;
    },

    get(id: string): TriggerRecord | undefined {
      return byId.get({ id }) as TriggerRecord | undefined;
    },

    /** Pushes recorded while the engine did not answer, oldest first. */
    listUnmatched(limit: number): TriggerRecord[] {
      return unmatched.all({ limit }) as TriggerRecord[];
    },

    /** Ends a push's wait to be matched; false when it was not waiting (matched already). */
    clearUnmatched(id: string): boolean {
      return clearUnmatched.get({ id }) !== undefined;
    },

    setCallbackState(triggerId: string, state: string): void {
      db.update(triggers).set({ callbackState: state }).where(eq(triggers.id, triggerId)).run();
    },
  };
}
