import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { streamSSE, type SSEStreamingApi } from "hono/streaming";
import type { Logger } from "pino";
import type { ApiClaims } from "../../auth/tokens.js";
import { AppError } from "../../domain/app-error.js";
import { isTerminal } from "../../domain/deployment.js";
import { parseProgress } from "../../domain/rollout-progress.js";
import type { DeploymentStore } from "../../store/deployment-store.js";
import type { FeedEvent } from "../../store/event-feed.js";
import type { EventHub } from "../event-hub.js";
import * as s from "./schemas.js";

/**
 * `GET /api/events` and `GET /api/deployments/:id/events`: Server-Sent
 * Events read from the record. A stream first replays what its cursor has
 * not seen (Last-Event-ID, or all of one deployment's timeline), then
 * switches, in the same turn of the event loop as its last empty read, to
 * the hub's live events, so nothing falls between the two and nothing comes
 * twice. `id:` is the timeline row's id: what a reconnecting client sends back.
 */
export interface EventStreamDeps {
  store: Pick<DeploymentStore, "feed" | "findDeployment">;
  hub: EventHub;
  /**
   * Whether the request's token or session still allows the stream, asked before each batch of events and each
   * heartbeat: a stream ends once its client has signed out or its session or token has expired (the client's
   * reconnection then gets 401).
   */
  stillAuthorized: (c: Context) => Promise<boolean>;
  log: Logger;
  /** A `:` comment line this often when nothing else is sent, so proxies keep the connection open. */
  heartbeatMs: number;
  /**
   * A write the client does not take within this long ends the stream: a client that stopped reading would
   * otherwise hold its place (and its token's) for as long as its connection stays open, past its token's expiry.
   */
  writeDeadlineMs: number;
}

const REPLAY_PAGE = 200;
const RETRY_MS = 2000;

const iso = (ms: number) => new Date(ms).toISOString();

/** An event's data: who, the entry itself, and for a rollout's task count the numbers. */
export function toStreamEventJson(e: FeedEvent) {
  const progress = parseProgress(e.message);
  return {
    deploymentId: e.deploymentId,
    service: e.service,
    status: e.status,
    entry: { at: iso(e.at), status: e.status, message: e.message },
    ...(e.kind === "deployment"
      ? {
          deployment: {
            id: e.deploymentId,
            service: e.service,
            image: e.image,
            trigger: e.trigger,
            requestedBy: e.requestedBy,
            createdAt: iso(e.createdAt),
          },
        }
      : {}),
    // The end of a deployment that updated its service: the pinned image it sent (the services page shows it).
    ...(e.kind === "final" && e.pinnedImage ? { pinnedImage: e.pinnedImage } : {}),
    ...(progress ? { progress } : {}),
  };
}

function cursorOf(c: Context, query: string | undefined): number | undefined {
  const raw = c.req.header("last-event-id")?.trim() || query;
  if (raw === undefined || raw === "") return undefined;
  if (!/^\d{1,15}$/.test(raw)) throw new AppError("VALIDATION_FAILED", "Last-Event-ID: not an event id sent by this server");
  return Number(raw);
}

async function pump(
  c: Context,
  stream: SSEStreamingApi,
  deps: EventStreamDeps,
  from: { cursor: number; deploymentId?: string; release: () => void },
) {
  const { feed } = deps.store;
  const { deploymentId, release } = from;
  let cursor = from.cursor;
  let subscription: ReturnType<EventHub["subscribe"]> | undefined;
  let closed = false;
  stream.onAbort(() => {
    closed = true;
    subscription?.close();
  });
  /** Ends the stream and its socket: the pending write fails. */
  const drop = (why: string) => {
    deps.log.warn({ requestId: c.get("requestId"), lastEventId: cursor }, why);
    stream.abort();
    (c.env as { outgoing?: { destroy(): void } } | undefined)?.outgoing?.destroy();
  };
  /** A write the client takes within writeDeadlineMs, or the end of its stream. */
  const taken = async (write: Promise<unknown>) => {
    const timer = setTimeout(() => drop("dropped an event stream whose client stopped reading"), deps.writeDeadlineMs);
    timer.unref();
    try {
      await write;
    } finally {
      clearTimeout(timer);
    }
  };
  /** Writes one event; true when it ended a single deployment's stream. */
  const send = async (e: FeedEvent) => {
    await taken(stream.writeSSE({ event: e.kind, id: String(e.id), data: JSON.stringify(toStreamEventJson(e)) }));
    cursor = e.id;
    return deploymentId !== undefined && e.kind === "final";
  };
  try {
    await taken(stream.write(`retry: ${RETRY_MS}\n\n`));
    for (;;) {
      const page = feed.readAfter(cursor, { deploymentId, limit: REPLAY_PAGE });
      if (page.length === 0) break;
      for (const e of page) if (await send(e)) return;
      // A long replay is a stream too: it ends once its token or session no longer allows it.
      if (closed || !(await deps.stillAuthorized(c))) return;
    }
    // Still in the turn of the empty read: what commits from here on reaches the subscription.
    if (deploymentId) {
      const dep = deps.store.findDeployment(deploymentId);
      if (!dep || isTerminal(dep.status)) return;
    }
    // Its writes stuck behind a full socket: end them (the pending one fails), and the socket too.
    subscription = deps.hub.subscribe(deploymentId, () => drop("dropped an event stream whose client did not keep up"));
    while (!closed) {
      const next = await subscription.next(deps.heartbeatMs);
      if (next === "closed" || next === "overflow") return;
      if (!(await deps.stillAuthorized(c))) return;
      if (next === "idle") await taken(stream.write(": heartbeat\n\n"));
      else for (const e of next) if (e.id > cursor && (await send(e))) return;
    }
  } finally {
    subscription?.close();
    release();
  }
}

function open(c: Context, deps: EventStreamDeps, from: { cursor: number; deploymentId?: string }) {
  // An id past the newest this server has recorded is not one of its events (a database restored from an older backup):
  // streaming from it would stay silent until the ids caught up, and a deployment's stream would never see its end.
  const latest = deps.store.feed.latestId();
  if (from.cursor > latest) {
    throw new AppError("VALIDATION_FAILED", `Last-Event-ID ${from.cursor} is past this server's newest event (${latest}); reconnect without it`);
  }
  const claims = c.get("apiClaims") as ApiClaims | undefined;
  const release = deps.hub.reserve(claims?.jti ?? `sub:${claims?.sub ?? ""}`);
  try {
    c.header("X-Accel-Buffering", "no");
    return streamSSE(c, (stream) => pump(c, stream, deps, { ...from, release }));
  } catch (err) {
    release();
    throw err;
  }
}

const sse = (description: string) => ({ description, content: { "text/event-stream": { schema: s.StreamEventSchema } } });
const errors = (...codes: Array<400 | 401 | 403 | 404 | 429 | 503>) =>
  Object.fromEntries(codes.map((code) => [code, { description: `error ${code}`, content: { "application/json": { schema: s.ErrorSchema } } }]));

export function registerEventRoutes(app: OpenAPIHono<{ Variables: { requestId: string; apiClaims: ApiClaims } }>, deps: EventStreamDeps) {
  app.openapi(
    createRoute({
      method: "get",
      path: "/events",
      security: [{ bearer: [] }],
      description:
        "Server-Sent Events: every new deployment (`deployment`), timeline entry (`timeline`) and final status (`final`) as it is committed. " +
        "Without Last-Event-ID it starts from now; with it (the header, or `lastEventId`) from the entry after that id.",
      request: { query: s.EventStreamQuery, headers: s.EventStreamHeaders },
      responses: { 200: sse("the event stream"), ...errors(400, 401, 403, 429, 503) },
    }),
    (c) => {
      const cursor = cursorOf(c, c.req.valid("query").lastEventId);
      return open(c, deps, { cursor: cursor ?? deps.store.feed.latestId() });
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/deployments/{id}/events",
      security: [{ bearer: [] }],
      description:
        "Server-Sent Events of one deployment: its timeline from the first entry (or after Last-Event-ID), live; the stream ends after its `final` event.",
      request: { params: s.DeploymentIdParam, query: s.EventStreamQuery, headers: s.EventStreamHeaders },
      responses: { 200: sse("the deployment's event stream"), ...errors(400, 401, 403, 404, 429, 503) },
    }),
    (c) => {
      const { id } = c.req.valid("param");
      const cursor = cursorOf(c, c.req.valid("query").lastEventId);
      if (!deps.store.findDeployment(id)) throw new AppError("NOT_FOUND", `no deployment with id ${JSON.stringify(id)}`);
      return open(c, deps, { cursor: cursor ?? 0, deploymentId: id });
    },
  );
}
