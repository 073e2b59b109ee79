import { Hono, type Context } from "hono";
import { TokenError } from "../../auth/tokens.js";
import { AppError, statusOf } from "../../domain/app-error.js";
import { deploymentStatuses, triggerKinds, type DeploymentStatus, type TriggerKind } from "../../domain/deployment.js";
import { isServiceRef } from "../../domain/service-ref.js";
import { listServices } from "../../operations/list-services.js";
import type { FeedEvent } from "../../store/event-feed.js";
import { decodeCursor, encodeCursor } from "../api/cursor.js";
import { serveAsset } from "./assets.js";
import { registerActionRoutes } from "./action-routes.js";
import { html, readForm, type DashboardDeps, type DashboardEnv } from "./render.js";
import { csrfMatches, LacksReadScopeError, sameOrigin, SessionsFullError, type Session } from "./sessions.js";
import { DeploymentPage } from "./views/deployment-page.js";
import { SignInPage } from "./views/forms.js";
import { HistoryPage } from "./views/history-page.js";
import { ErrorPage } from "./views/layout.js";
import { ServicesPage } from "./views/services-page.js";

const PAGE_SIZE = 50;
const DEPLOYMENT_ID = /^dep_[0-9a-z]{26}$/;

/** Every timeline row of one deployment, with the ids its event stream goes on from. */
function timelineOf(deps: DashboardDeps, id: string): FeedEvent[] {
  const all: FeedEvent[] = [];
  for (;;) {
    const page = deps.store.feed.readAfter(all.at(-1)?.id ?? 0, { deploymentId: id, limit: 500 });
    all.push(...page);
    if (page.length < 500) return all;
  }
}

function pick<T extends string>(value: string | undefined, allowed: readonly T[], field: string): T | undefined {
  if (!value) return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new AppError("VALIDATION_FAILED", `${field}: no such ${field} "${value.slice(0, 40)}"`);
  return value as T;
}

/**
 * The operator's dashboard at `/`: server-rendered pages (hono/jsx), a small
 * script of its own for the live parts, and forms whose actions call the same
 * operations as the REST API. A page needs a session (sign-in with an API
 * token); an action needs its token's deployments:write, the session's CSRF
 * token and a same-origin request.
 */
export function createDashboardRoutes(deps: DashboardDeps) {
  const app = new Hono<DashboardEnv>();

  /** Runs a page: no session → the sign-in page; an AppError → an error page with its status. */
  const page = (handler: (c: Context<DashboardEnv>, session: Session) => Response | Promise<Response>) => async (c: Context<DashboardEnv>) => {
    const session = await deps.sessions.fromRequest(c);
    if (!session) {
      deps.sessions.clearCookie(c);
      return c.redirect("/sign-in", 303);
    }
    try {
      return await handler(c, session);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      const status = statusOf(err.code);
      return html(c, <ErrorPage session={session} status={status} title={titleOf(status)} message={err.message} />, status);
    }
  };

  app.get("/assets/:file", (c) => serveAsset(c, c.req.param("file")));

  app.get("/sign-in", async (c) => {
    if (await deps.sessions.fromRequest(c)) return c.redirect("/", 303);
    return html(c, <SignInPage />);
  });

  app.post("/sign-in", async (c) => {
    if (!sameOrigin(c)) return html(c, <SignInPage error="Refused: this form was not sent from this server's own page." />, 403);
    const token = (await readForm(c)).token;
    if (typeof token !== "string" || token.trim() === "") return html(c, <SignInPage error="Paste an API token to sign in." />, 400);
    try {
      // The session this browser had, if any, ends with it: signing out later ends the one it has then, and no copy of the old cookie stays good.
      const opened = await deps.sessions.open(token.trim(), deps.sessions.idOf(c));
      deps.sessions.setCookie(c, opened.id, opened.maxAgeS);
      deps.log.info({ requestId: c.get("requestId"), sub: opened.claims.sub, scopes: opened.claims.scopes }, "dashboard sign-in");
      return c.redirect("/", 303);
    } catch (err) {
      if (err instanceof SessionsFullError) return html(c, <SignInPage error={`Not signed in: ${err.message}.`} />, 429);
      if (!(err instanceof TokenError)) throw err;
      deps.log.info({ requestId: c.get("requestId"), reason: err.reason }, "dashboard sign-in refused");
      const status = err instanceof LacksReadScopeError ? 403 : 401;
      return html(c, <SignInPage error={`Not signed in: ${err.message}.`} />, status);
    }
  });

  app.post("/sign-out", async (c) => {
    const session = await deps.sessions.fromRequest(c);
    if (session && (!sameOrigin(c) || !csrfMatches(session, (await readForm(c)).csrf))) {
      return html(
        c,
        <ErrorPage session={session} status={403} title="Refused" message="This request did not come from a page of this server." />,
        403,
      );
    }
    deps.sessions.close(c);
    deps.sessions.clearCookie(c);
    return c.redirect("/sign-in", 303);
  });

  app.get(
    "/",
    page(async (c, session) => {
      const services = await listServices(deps);
      return html(c, <ServicesPage session={session} services={services} quarantines={deps.holds.quarantines()} />);
    }),
  );

  app.get(
    "/history",
    page((c, session) => {
      const query = c.req.query();
      const service = query.service?.trim() || undefined;
      if (service !== undefined && !isServiceRef(service)) throw new AppError("VALIDATION_FAILED", "service: not a service name");
      const status = pick<DeploymentStatus>(query.status, deploymentStatuses, "status");
      const trigger = pick<TriggerKind>(query.trigger, triggerKinds, "trigger");
      const cursor = query.cursor || undefined;
      const found = deps.history.list({ service, status, trigger, limit: PAGE_SIZE, beforeId: cursor ? decodeCursor(cursor) : undefined });
      const last = found.items.at(-1);
      return html(
        c,
        <HistoryPage
          session={session}
          filters={{ service, status, trigger, cursor }}
          items={found.items}
          nextCursor={found.hasMore && last ? encodeCursor(last.id) : null}
        />,
      );
    }),
  );

  app.get(
    "/deployments/:id",
    page((c, session) => {
      const id = c.req.param("id")!;
      const dep = DEPLOYMENT_ID.test(id) ? deps.store.findDeployment(id) : undefined;
      if (!dep) throw new AppError("NOT_FOUND", `no deployment with id ${JSON.stringify(id.slice(0, 40))}`);
      return html(c, <DeploymentPage session={session} dep={dep} events={timelineOf(deps, id)} coalesced={deps.store.coalescedInto(id, 0).count} />);
    }),
  );

  registerActionRoutes(app, deps, page);
  return app;
}

export function titleOf(status: number): string {
  if (status === 401) return "Not signed in";
  if (status === 403) return "Not allowed";
  if (status === 404) return "Not found";
  if (status === 409) return "Not possible now";
  if (status === 422) return "Cannot do that";
  if (status === 503) return "Unavailable";
  return "Bad request";
}
