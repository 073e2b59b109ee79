import { and, asc, eq } from "drizzle-orm";
import type { ClaimRules } from "../domain/claim-rules.js";
import type { SourceKind } from "../domain/source.js";
import type { Db } from "./database.js";
import { sources } from "./schema.js";

/** What an OIDC source (gar, oidc) checks a token against instead of a secret. */
export interface OidcRules {
  issuer: string;
  jwksUrl: string;
  audience: string;
  /** gar: the service account the token must name, with email_verified. */
  email?: string;
  /** oidc: claim name → patterns, every one to match. */
  claims?: ClaimRules;
}

/** A push source as the rest of the server sees it: arrays parsed, the stored secrets opaque. */
export interface SourceRecord {
  id: string;
  kind: SourceKind;
  repos: string[];
  services?: string[];
  headerName?: string;
  /** The stored form (hash or sealed value); null once revoked, and always for an OIDC source. */
  secret: string | null;
  oidc?: OidcRules;
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
  secret?: string;
  oidc?: OidcRules;
}

function toRecord(row: typeof sources.$inferSelect): SourceRecord {
  return {
    id: row.id,
    kind: row.kind as SourceKind,
    repos: JSON.parse(row.repos) as string[],
    ...(row.services ? { services: JSON.parse(row.services) as string[] } : {}),
    ...(row.headerName ? { headerName: row.headerName } : {}),
    secret: row.secret,
    ...(row.issuer && row.jwksUrl && row.audience
      ? {
          oidc: {
            issuer: row.issuer,
            jwksUrl: row.jwksUrl,
            audience: row.audience,
            ...(row.email ? { email: row.email } : {}),
            ...(row.claims ? { claims: JSON.parse(row.claims) as ClaimRules } : {}),
          },
        }
      : {}),
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
          secret: source.secret ?? null,
          issuer: source.oidc?.issuer ?? null,
          jwksUrl: source.oidc?.jwksUrl ?? null,
          audience: source.oidc?.audience ?? null,
          email: source.oidc?.email ?? null,
          claims: source.oidc?.claims ? JSON.stringify(source.oidc.claims) : null,
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

    /** The sources whose tokens come from this issuer, revoked ones too, oldest first. */
    byIssuer(kind: SourceKind, issuer: string): SourceRecord[] {
      return db
        .select()
        .from(sources)
        .where(and(eq(sources.kind, kind), eq(sources.issuer, issuer)))
        .orderBy(asc(sources.id))
        .all()
        .map(toRecord);
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

    /** Revoked sources keep their row (the audit and the history refer to the id), without any secret; an OIDC source keeps its rules, which prove nothing. */
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
