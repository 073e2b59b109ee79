import Database from "better-sqlite3";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Sqlite } from "./database.js";

/**
 * Online, consistent copies of the database with SQLite's backup API
 * (better-sqlite3 `backup()`): the copy is one committed state, taken while
 * the server goes on writing (it copies in steps between writes and starts
 * over when a write changed a page it had copied).
 */

/** A copy of the open connection's database at `destination` (a new SQLite file). */
export async function backupDatabase(sqlite: Sqlite, destination: string): Promise<void> {
  await sqlite.backup(destination);
}

/** A copy of the database file at `source`, from another process than the server's (the CLI's `backup --local`). */
export async function backupDatabaseFile(source: string, destination: string): Promise<void> {
  const sqlite = new Database(source, { fileMustExist: true });
  try {
    sqlite.pragma("busy_timeout = 5000");
    await sqlite.backup(destination);
  } finally {
    sqlite.close();
  }
}

/** A copy in a temporary folder, for the API to stream; `remove()` deletes it. */
export async function snapshotDatabase(sqlite: Sqlite): Promise<{ path: string; size: number; remove(): void }> {
  const dir = mkdtempSync(join(tmpdir(), "deployer-backup-"));
  const path = join(dir, "deployer.db");
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    await backupDatabase(sqlite, path);
    return { path, size: statSync(path).size, remove };
  } catch (err) {
    remove();
    throw err;
  }
}
