/**
 * The baseline: a bare hono route returning 200, served by @hono/node-server
 * exactly like the deploy server (same bundling, same adapter, same host), so
 * the ratio shows what the deployer's own work costs on top of the stack.
 *
 * With BENCH_BASELINE_DB set it also serves `POST /hooks/commit`: the body
 * read and one row committed to SQLite per request, with the server's
 * pragmas (WAL, synchronous NORMAL). Not a target, but the floor any webhook
 * receiver pays that records a push before answering it.
 */
import { serve } from "@hono/node-server";
import Database from "better-sqlite3";
import { Hono } from "hono";
import { announceReady, answerRpc } from "./child-ipc.js";

const app = new Hono();
app.post("/hooks/registry", (c) => c.text("ok", 200));
app.get("/healthz", (c) => c.text("ok", 200));

const dbPath = process.env.BENCH_BASELINE_DB;
if (dbPath) {
  const db = new Database(dbPath);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.exec("create table if not exists pushes (id integer primary key, body text not null)");
  const insert = db.prepare("insert into pushes (body) values (?)");
  app.post("/hooks/commit", async (c) => {
    insert.run(await c.req.text());
    return c.text("ok", 202);
  });
}

answerRpc({ rss: () => process.memoryUsage().rss });
serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info) => announceReady(info.port));
