import type { Context, Hono } from "hono";
import { AppError } from "../../domain/app-error.js";
import { familiarRepoTag, isTag, tryParseImageRef } from "../../domain/image-ref.js";
import { deployService } from "../../operations/deploy-service.js";
import { getManagedService } from "../../operations/operations-deps.js";
import { resumeService } from "../../operations/resume-service.js";
import { rollbackService } from "../../operations/rollback-service.js";
import { html, readForm, type DashboardDeps, type DashboardEnv } from "./render.js";
import { csrfMatches, sameOrigin, type Session } from "./sessions.js";
import { ConfirmPage, RollbackChooser } from "./views/forms.js";
import { Digest, Status, Time } from "./views/layout.js";

type Page = (
  handler: (c: Context<DashboardEnv>, session: Session) => Response | Promise<Response>,
) => (c: Context<DashboardEnv>) => Promise<Response>;

const DEPLOYMENT_ID = /^dep_[0-9a-z]{26}$/;

function requireWrite(session: Session): void {
  if (!session.canWrite) throw new AppError("FORBIDDEN", "this token lacks the deployments:write scope: the dashboard is read-only for it");
}

/** A state-changing request: write scope, sent from this server's page (Origin), with the session's CSRF token. */
async function checkPost(c: Context, session: Session): Promise<Record<string, string>> {
  requireWrite(session);
  if (!sameOrigin(c)) throw new AppError("FORBIDDEN", "refused: the request's Origin is not this server");
  const form = await readForm(c);
  if (!csrfMatches(session, form.csrf))
    throw new AppError("FORBIDDEN", "refused: the form's CSRF token is missing or wrong; reload the page and try again");
  return form;
}

function tagOf(value: string | undefined): string {
  const tag = value?.trim() ?? "";
  if (!isTag(tag)) throw new AppError("VALIDATION_FAILED", `tag: "${tag.slice(0, 130)}" is not a valid tag`);
  return tag;
}

function deploymentOf(deps: DashboardDeps, id: string) {
  const dep = DEPLOYMENT_ID.test(id) ? deps.store.findDeployment(id) : undefined;
  if (!dep) throw new AppError("NOT_FOUND", `no deployment with id ${JSON.stringify(id.slice(0, 40))}`);
  return dep;
}

/** The confirmation pages (GET, they change nothing) and the actions they post to. */
export function registerActionRoutes(app: Hono<DashboardEnv>, deps: DashboardDeps, page: Page) {
  app.get(
    "/services/:name/rollback",
    page(async (c, session) => {
      requireWrite(session);
      const service = await getManagedService(deps, c.req.param("name")!);
      const running = tryParseImageRef(service.image)?.digest ?? null;
      const to = c.req.query("to");
      if (!to) {
        const candidates = deps.history
          .list({ service: service.name, status: "succeeded", limit: 50 })
          .items.filter((d) => d.digest && d.digest !== running)
          .filter((d, i, all) => all.findIndex((o) => o.digest === d.digest) === i);
        return html(c, <RollbackChooser session={session} service={service.name} running={running} candidates={candidates} />);
      }
      const target = deploymentOf(deps, to);
      if (target.service !== service.name) throw new AppError("UNPROCESSABLE", `deployment ${to} is not a deployment of ${service.name}`);
      if (!target.digest) throw new AppError("UNPROCESSABLE", `deployment ${target.id} never resolved a digest, so there is nothing to redeploy`);
      return html(
        c,
        <ConfirmPage
          session={session}
          title={`Roll back ${service.name}?`}
          action={`/services/${encodeURIComponent(service.name)}/rollback?to=${target.id}`}
          button={`Roll back ${service.name}`}
          danger
          back={`/deployments/${target.id}`}
        >
          <p>
            {service.name} now runs <code class="image">{service.image.split("@")[0]}</code> <Digest digest={running} />.
          </p>
          <p>
            Rolling back updates {service.name} to <code class="image">{target.image}</code> <Digest digest={target.digest} />, the digest of
            deployment <a href={`/deployments/${target.id}`}>{target.id}</a> (<Status status={target.status} />,{" "}
            <Time ms={target.finishedAt ?? target.createdAt} />
            ), pinned by digest, following the service's own update settings.
          </p>
          <p>
            {service.name} is then <strong>held</strong>: pushes and the poller record their deployments as skipped until someone resumes it or
            deploys by hand.
          </p>
        </ConfirmPage>,
      );
    }),
  );

  app.post(
    "/services/:name/rollback",
    page(async (c, session) => {
      await checkPost(c, session);
      const to = c.req.query("to");
      const dep = await rollbackService(deps, { service: c.req.param("name")!, to: to || undefined, requestedBy: session.claims.sub });
      return c.redirect(`/deployments/${dep.id}`, 303);
    }),
  );

  app.get(
    "/services/:name/deploy",
    page(async (c, session) => {
      requireWrite(session);
      const service = await getManagedService(deps, c.req.param("name")!);
      const tag = tagOf(c.req.query("tag"));
      const current = tryParseImageRef(service.image);
      if (!current)
        throw new AppError("UNPROCESSABLE", `${service.name}'s image ${JSON.stringify(service.image)} cannot be read as an image reference`);
      const target = familiarRepoTag({ ...current, tag });
      const held = deps.holds.find(service.name);
      return html(
        c,
        <ConfirmPage
          session={session}
          title={`Deploy ${target} to ${service.name}?`}
          action={`/services/${encodeURIComponent(service.name)}/deploy?tag=${encodeURIComponent(tag)}`}
          button={`Deploy ${target}`}
          back="/"
        >
          <p>
            {service.name} now runs <code class="image">{service.image.split("@")[0]}</code> <Digest digest={current.digest ?? null} />.
          </p>
          <p>
            The server resolves <code class="image">{target}</code> to its digest in the registry now and updates {service.name} to it, pinned by
            digest, following the service's own update settings. If that digest already runs, nothing changes.
          </p>
          {held && (
            <p>
              This lifts the hold on {service.name} ({held.reason}): pushes and the poller deploy it again afterwards.
            </p>
          )}
        </ConfirmPage>,
      );
    }),
  );

  app.post(
    "/services/:name/deploy",
    page(async (c, session) => {
      await checkPost(c, session);
      const tag = tagOf(c.req.query("tag"));
      const dep = await deployService(deps, { service: c.req.param("name")!, tag, requestedBy: session.claims.sub });
      return c.redirect(`/deployments/${dep.id}`, 303);
    }),
  );

  app.get(
    "/services/:name/resume",
    page(async (c, session) => {
      requireWrite(session);
      const service = await getManagedService(deps, c.req.param("name")!);
      const held = deps.holds.find(service.name);
      return html(
        c,
        <ConfirmPage
          session={session}
          title={`Resume ${service.name}?`}
          action={`/services/${encodeURIComponent(service.name)}/resume`}
          button={`Resume ${service.name}`}
          back="/"
        >
          {held ? (
            <p>
              {service.name} is held since <Time ms={held.createdAt} /> ({held.reason}). Resuming lifts the hold: nothing is deployed now, and the
              next push or poll of its tag deploys it as usual.
            </p>
          ) : (
            <p>{service.name} is not held; resuming changes nothing.</p>
          )}
        </ConfirmPage>,
      );
    }),
  );

  app.post(
    "/services/:name/resume",
    page(async (c, session) => {
      await checkPost(c, session);
      await resumeService(deps, { service: c.req.param("name")! });
      return c.redirect("/", 303);
    }),
  );

  for (const verb of ["approve", "reject"] as const) {
    app.get(
      `/deployments/:id/${verb}`,
      page((c, session) => {
        requireWrite(session);
        const dep = deploymentOf(deps, c.req.param("id")!);
        if (dep.status !== "awaiting_approval") throw new AppError("CONFLICT", `deployment ${dep.id} is ${dep.status}, not awaiting approval`);
        return html(
          c,
          <ConfirmPage
            session={session}
            title={`${verb === "approve" ? "Approve" : "Reject"} the deployment of ${dep.image} to ${dep.service}?`}
            action={`/deployments/${dep.id}/${verb}`}
            button={verb === "approve" ? "Approve" : "Reject"}
            danger={verb === "reject"}
            back={`/deployments/${dep.id}`}
          >
            <p>
              Deployment <a href={`/deployments/${dep.id}`}>{dep.id}</a> of <code class="image">{dep.image}</code> <Digest digest={dep.digest} /> to{" "}
              {dep.service}, requested by {dep.requestedBy} at <Time ms={dep.createdAt} />, waits for approval.
            </p>
            {verb === "approve" ? (
              <p>Approving queues it: it deploys as soon as the service's other gates (deploy window, minimum age) allow.</p>
            ) : (
              <p>Rejecting ends it rejected: nothing is deployed, and {dep.service} keeps what it runs. A later push deploys as usual.</p>
            )}
          </ConfirmPage>,
        );
      }),
    );

    app.post(
      `/deployments/:id/${verb}`,
      page(async (c, session) => {
        await checkPost(c, session);
        const id = deploymentOf(deps, c.req.param("id")!).id;
        if (verb === "approve") deps.deployer.approve(id, session.claims.sub);
        else deps.deployer.reject(id, session.claims.sub);
        return c.redirect(`/deployments/${id}`, 303);
      }),
    );
  }
}
