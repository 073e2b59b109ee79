import Database from "better-sqlite3";
import { drizzle, type BetterSQLite3Database } from "drizzle-orm/better-sqlite3";
import { migrate } from "drizzle-orm/better-sqlite3/migrator";
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as schema from "./schema.js";

/** Drizzle over the connection, which stays reachable as `$client` (the event feed asks it whether a transaction is open). */
export type Db = BetterSQLite3Database<typeof schema> & { $client: Database.Database };
/** The raw better-sqlite3 connection, for the modules of this folder that prepare statements themselves. */
export type Sqlite = Database.Database;

export interface OpenDatabase {
  db: Db;
  sqlite: Database.Database;
  close(): void;
}

/**
 * The nearest `migrations/` folder above this module: the repository's when
 * run from source (server/store/), the same one from the bundle (dist/).
 */
export function findMigrationsFolder(from: string): string {
  let dir = from;
  for (;;) {
    const candidate = join(dir, "migrations");
    if (existsSync(join(candidate, "meta", "_journal.json"))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no migrations/ folder (with meta/_journal.json) above ${from}`);
    dir = parent;
  }
}

export const migrationsFolder = findMigrationsFolder(dirname(fileURLToPath(import.meta.url)));

/**
 * Opens the SQLite file and applies the SQL migrations, the only way the
 * schema changes (tests included). WAL lets the API read while the engine
 * writes; the busy timeout covers a second process such as the token CLI.
 */
export function openDatabase(path: string): OpenDatabase {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const sqlite = new Database(path);
  sqlite.pragma("journal_mode = WAL");
  sqlite.pragma("busy_timeout = 5000");
  sqlite.pragma("synchronous = NORMAL");
  sqlite.pragma("foreign_keys = ON");
  const db = drizzle(sqlite, { schema });
  migrate(db, { migrationsFolder });
  return { db, sqlite, close: () => sqlite.close() };
}

/** Cheap liveness query for /readyz. */
export function pingDatabase(sqlite: Database.Database): void {
  sqlite.prepare("select 1").get();
}

/**
 * Whether a write failed because the database's disk is full or failing:
 * SQLITE_FULL, SQLITE_IOERR_*, or SQLITE_READONLY (a file system that went
 * read-only after disk errors). Nothing of the write was recorded, and the
 * same write succeeds once the disk is back. Not the caller's fault.
 */
export function isStorageFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === "string" && (code === "SQLITE_FULL" || code.startsWith("SQLITE_IOERR") || code.startsWith("SQLITE_READONLY"));
}
