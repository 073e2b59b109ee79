import Database from "better-sqlite3";
import { drizzle, type BetterSQLite3Database } from "drizzle-orm/better-sqlite3";
import { migrate } from "drizzle-orm/better-sqlite3/migrator";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import * as schema from "./schema.js";

export type Db = BetterSQLite3Database<typeof schema>;

export interface OpenDatabase {
  db: Db;
  sqlite: Database.Database;
  close(): void;
}

export const migrationsFolder = fileURLToPath(new URL("../../migrations", import.meta.url));

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
