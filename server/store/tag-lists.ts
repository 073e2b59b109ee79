import { eq } from "drizzle-orm";
import type { Db } from "./database.js";
import { followedTagLists } from "./schema.js";

/** The tag lists the poller read last, per repository and login, kept across restarts. */
export function createTagListMemory(db: Db, now: () => number) {
  return {
    find(listKey: string): Set<string> | undefined {
      const row = db.select().from(followedTagLists).where(eq(followedTagLists.listKey, listKey)).get();
      if (!row) return undefined;
      const tags: unknown = JSON.parse(row.tags);
      return new Set(Array.isArray(tags) ? tags.filter((t): t is string => typeof t === "string") : []);
    },
    save(listKey: string, tags: readonly string[]): void {
      const row = { listKey, tags: JSON.stringify(tags), seenAt: now() };
      db.insert(followedTagLists)
        .values(row)
        .onConflictDoUpdate({ target: followedTagLists.listKey, set: { tags: row.tags, seenAt: row.seenAt } })
        .run();
    },
  };
}

export type TagListMemory = ReturnType<typeof createTagListMemory>;
