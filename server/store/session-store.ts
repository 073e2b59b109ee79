import { count, eq, lte, sql } from "drizzle-orm";
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

  // Beyond the newest `keep` of the owner's sessions.
  const dropOwnOldest = db.$client.prepare(
    "delete from dashboard_sessions where id_hash in (select id_hash from dashboard_sessions where owner = ? order by created_at desc limit -1 offset ?)",
  );

  return {
    get(idHash: string): StoredSession | undefined {
      return byHash.get({ idHash });
    },

    /**
     * Adds a session after dropping the one it replaces (the browser's before), the expired ones and, when its
     * token holds `perOwner` already, that token's oldest: one token's sign-ins never end another's sessions.
     * False, with nothing written, when `total` are open all the same.
     */
    add(row: StoredSession, limits: { perOwner: number; total: number }, replacing?: string): boolean {
      return db.transaction((tx) => {
        // The browser's session before this sign-in goes first: it is not counted against its token's, or anyone's.
        if (replacing) tx.delete(dashboardSessions).where(eq(dashboardSessions.idHash, replacing)).run();
        tx.delete(dashboardSessions).where(lte(dashboardSessions.expiresAt, row.createdAt)).run();
        if (row.owner !== null) dropOwnOldest.run(row.owner, limits.perOwner - 1);
        const [{ n }] = tx.select({ n: count() }).from(dashboardSessions).all() as [{ n: number }];
        if (n >= limits.total) return false;
        tx.insert(dashboardSessions).values(row).run();
        return true;
      });
    },

    delete(idHash: string): void {
      db.delete(dashboardSessions).where(eq(dashboardSessions.idHash, idHash)).run();
    },
  };
}
