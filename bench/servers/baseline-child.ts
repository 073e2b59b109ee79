/**
 * The baseline: a bare hono route returning 200, served by @hono/node-server
 * exactly like the deploy server (same loader, same adapter, same host), so
 * the ratio shows what the deployer's own work costs on top of the stack.
 */
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { announceReady, answerRpc } from "./child-ipc.js";

const app = new Hono();
app.post("/hooks/registry", (c) => c.text("ok", 200));
app.get("/healthz", (c) => c.text("ok", 200));

answerRpc({ rss: () => process.memoryUsage().rss });
serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info) => announceReady(info.port));
