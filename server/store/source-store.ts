import { asc, eq } from "drizzle-orm";
import type { SourceKind } from "../domain/source.js";
import type { Db } from "./database.js";
import { sources } from "./schema.js";

/** A push source as the rest of the server sees it: arrays parsed, the stored secrets opaque. */
export interface SourceRecord {
  id: string;
  kind: SourceKind;
  repos: string[];
  services?: string[];
  headerName?: string;
  /** The stored form (hash or sealed value); null once revoked. */
  secret: string | null;
  previousSecret: string | null;
  previousUntil: number | null;
  createdAt: number;
  rotatedAt: number | null;
  revokedAt: number | null;
}

export interface NewSource {
  id: string;
  kind: SourceKind;
  repos: string[];
  services?: string[];
  headerName?: string;
  secret: string;
}

function toRecord(row: typeof sources.$inferSelect): SourceRecord {
  return {
    id: row.id,
    kind: row.kind as SourceKind,
    repos: JSON.parse(row.repos) as string[],
    ...(row.services ? { services: JSON.parse(row.services) as string[] } : {}),
    ...(row.headerName ? { headerName: row.headerName } : {}),
    secret: row.secret,
    previousSecret: row.previousSecret,
    previousUntil: row.previousUntil,
    createdAt: row.createdAt,
    rotatedAt: row.rotatedAt,
    revokedAt: row.revokedAt,
  };
}

export type SourceStore = ReturnType<typeof createSourceStore>;

/**
 * The sources table. Nothing is cached: the token-style CLI writes the same
 * file while the server runs, and a lookup by primary key costs microseconds.
 */
export function createSourceStore(db: Db, now: () => number) {
  return {
    insert(source: NewSource): SourceRecord {
      const row = db
        .insert(sources)
        .values({
          id: source.id,
          kind: source.kind,
          repos: JSON.stringify(source.repos),
          services: source.services ? JSON.stringify(source.services) : null,
          headerName: source.headerName ?? null,
          secret: source.secret,
          createdAt: now(),
        })
        .returning()
        .get();
      return toRecord(row);
    },

    find(id: string): SourceRecord | undefined {
      const row = db.select().from(sources).where(eq(sources.id, id)).get();
      return row && toRecord(row);
    },

    list(): SourceRecord[] {
      return db.select().from(sources).orderBy(asc(sources.id)).all().map(toRecord);
    },

    /**
     * The new secret replaces the current one, which stays valid until
     * `previousUntil` (a zero grace drops it at once). A second rotation within
     * the grace drops the oldest: only the two newest secrets are ever valid.
     */
    rotate(id: string, secret: string, previousUntil: number): SourceRecord | undefined {
      return db.transaction((tx) => {
        const current = tx.select().from(sources).where(eq(sources.id, id)).get();
        if (!current || current.revokedAt !== null) return undefined;
        const at = now();
        const keep = previousUntil > at;
        const row = tx
          .update(sources)
          .set({ secret, previousSecret: keep ? current.secret : null, previousUntil: keep ? previousUntil : null, rotatedAt: at })
          .where(eq(sources.id, id))
          .returning()
          .get();
        return toRecord(row);
      });
    },

    /** Revoked sources keep their row (the audit and the history refer to the id), without any secret. */
    revoke(id: string): SourceRecord | undefined {
      const row = db
        .update(sources)
        .set({ secret: null, previousSecret: null, previousUntil: null, revokedAt: now() })
        .where(eq(sources.id, id))
        .returning()
        .get();
      return row && toRecord(row);
    },
  };
}
