import { asc, count, eq, lte, sql } from "drizzle-orm";
import type { Db } from "./database.js";
import { dashboardSessions } from "./schema.js";

export type StoredSession = typeof dashboardSessions.$inferSelect;
export type SessionStore = ReturnType<typeof createSessionStore>;

/** The dashboard's sessions as rows (schema.ts says what each column holds); written at sign-in and sign-out only. */
export function createSessionStore(db: Db) {
  const p = sql.placeholder;
  const byHash = db
    .select()
    .from(dashboardSessions)
    .where(eq(dashboardSessions.idHash, p("idHash")))
    .prepare();

  return {
    get(idHash: string): StoredSession | undefined {
      return byHash.get({ idHash });
    },

    /** Adds a session, after dropping the expired ones and, beyond `max`, the oldest. */
    add(row: StoredSession, max: number): void {
      db.transaction((tx) => {
        tx.delete(dashboardSessions).where(lte(dashboardSessions.expiresAt, row.createdAt)).run();
        const [{ n }] = tx.select({ n: count() }).from(dashboardSessions).all() as [{ n: number }];
        if (n >= max) {
          const oldest = tx
            .select({ idHash: dashboardSessions.idHash })
            .from(dashboardSessions)
            .orderBy(asc(dashboardSessions.createdAt))
            .limit(n - max + 1);
          tx.delete(dashboardSessions)
            .where(sql`${dashboardSessions.idHash} in ${oldest}`)
            .run();
        }
        tx.insert(dashboardSessions).values(row).run();
      });
    },

    delete(idHash: string): void {
      db.delete(dashboardSessions).where(eq(dashboardSessions.idHash, idHash)).run();
    },
  };
}
