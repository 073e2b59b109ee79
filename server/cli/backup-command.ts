import { createWriteStream, existsSync, renameSync, rmSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { loadConfig } from "../config/config.js";
import { backupDatabaseFile } from "../store/backup.js";
import { CliError, EXIT, send, type ApiTarget } from "./api-client.js";

/**
 * `deployer backup FILE`: an online, consistent copy of the database. By
 * default through the API (GET /api/backup, a token with database:backup),
 * which works from any machine that reaches the server; with --local from
 * the database file itself (DEPLOYER_DB, or --db), on the machine that holds
 * it, with the server running or not. Either way SQLite's backup API makes
 * the copy, so it is one committed state. The copy is written beside FILE
 * and renamed into place only when complete; an existing FILE is kept
 * unless --force.
 */
export interface BackupOptions {
  file: string;
  local: boolean;
  db?: string;
  force: boolean;
  target: () => ApiTarget;
}

export async function backup(opts: BackupOptions): Promise<{ file: string; bytes: number; via: "api" | "local" }> {
  const file = resolve(opts.file);
  if (existsSync(file) && !opts.force) throw new CliError(`${file} exists; pass --force to replace it`, EXIT.usage);
  const partial = `${file}.partial`;
  rmSync(partial, { force: true });
  try {
    if (opts.local) {
      const source = resolve(opts.db ?? loadConfig(process.env).store.dbPath);
      if (!existsSync(source)) throw new CliError(`no database at ${source} (set DEPLOYER_DB or pass --db)`, EXIT.usage);
      await backupDatabaseFile(source, partial);
    } else {
      const res = await send(opts.target(), "/api/backup");
      await pipeline(Readable.fromWeb(res.body as import("node:stream/web").ReadableStream), createWriteStream(partial));
    }
    renameSync(partial, file);
  } catch (err) {
    rmSync(partial, { force: true });
    throw err;
  }
  const { size } = statSync(file);
  return { file, bytes: size, via: opts.local ? "local" : "api" };
}
