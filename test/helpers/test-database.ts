import { join } from "node:path";
import { onTestFinished } from "vitest";
import { openDatabase, type OpenDatabase } from "../../server/store/database.js";
import { tempDir } from "./temp-dir.js";

/** A SQLite file built by the real migrations (in a fresh folder unless `path` names one), closed when the current test ends. */
export function testDatabase(path = join(tempDir("deployer-db-"), "deployer.db")): OpenDatabase {
  const database = openDatabase(path);
  onTestFinished(() => database.close());
  return database;
}
