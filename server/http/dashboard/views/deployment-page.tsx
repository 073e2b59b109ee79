import { isTerminal, waitingStatuses, type DeploymentStatus } from "../../../domain/deployment.js";
import { parseProgress } from "../../../domain/rollout-progress.js";
import type { DeploymentRecord } from "../../../store/deployment-store.js";
import type { FeedEvent } from "../../../store/event-feed.js";
import type { Session } from "../sessions.js";
import { ApprovalLinks, Digest, Layout, Status, Time } from "./layout.js";

/** The outcome box's colour: its words say the same. */
export function toneOf(status: DeploymentStatus): "ok" | "error" | "wait" {
  if (status === "succeeded") return "ok";
  if (status === "failed" || status === "rolled_back" || status === "rejected") return "error";
  return "wait";
}

export function DeploymentPage(props: { session: Session; dep: DeploymentRecord; events: FeedEvent[]; coalesced: number }) {
  const { dep, events, session } = props;
  const lastId = events.at(-1)?.id ?? 0;
  const progress =
    events
      .map((e) => parseProgress(e.message))
      .filter((p) => p !== null)
      .at(-1) ?? null;
  const live = !isTerminal(dep.status);
  const failed = dep.status === "failed" || dep.status === "rolled_back";
  const rollbackTo = `/services/${encodeURIComponent(dep.service)}/rollback?to=${dep.id}`;
  return (
    <Layout title={`${dep.service} ${dep.id}`} session={session} page="deployment" live="deployment">
      <p class="crumbs">
        <a href={`/history?service=${encodeURIComponent(dep.service)}`}>{dep.service}</a> / deployment
      </p>
      <h1>
        {dep.service} <span data-dep-status>{<Status status={dep.status} />}</span>
      </h1>
      <div id="deployment" data-id={dep.id} data-last-event-id={String(lastId)} data-live={live ? "true" : "false"}>
        <p class={`notice notice-${toneOf(dep.status)}`} data-outcome hidden={!(failed || dep.message) || undefined}>
          {dep.message}
        </p>
        <p class="progress-line" hidden={progress === null || undefined}>
          <label for="progress">Tasks on the new image</label>{" "}
          <progress id="progress" max={progress?.desired ?? 1} value={progress?.running ?? 0}>
            {progress ? `${progress.running}/${progress.desired}` : ""}
          </progress>{" "}
          <span data-progress-text>{progress ? `${progress.running}/${progress.desired}` : ""}</span>
        </p>
        <dl class="facts">
          <dt>Id</dt>
          <dd>
            <code>{dep.id}</code>
          </dd>
          <dt>Image</dt>
          <dd>
            <code class="image">{dep.image}</code>
          </dd>
          <dt>Digest</dt>
          <dd>
            <Digest digest={dep.digest} />
          </dd>
          <dt>Replaced</dt>
          <dd>{dep.previousImage ? <code class="image">{dep.previousImage}</code> : <span class="muted">nothing recorded</span>}</dd>
          <dt>Trigger</dt>
          <dd>{dep.trigger}</dd>
          <dt>Requested by</dt>
          <dd>{dep.requestedBy}</dd>
          <dt>Created</dt>
          <dd>
            <Time ms={dep.createdAt} />
          </dd>
          <dt>Started</dt>
          <dd>
            <Time ms={dep.startedAt} />
          </dd>
          <dt>Finished</dt>
          <dd data-finished>
            <Time ms={dep.finishedAt} />
          </dd>
          {waitingStatuses.has(dep.status) && dep.waitUntil !== null && (
            <>
              <dt>Waits until</dt>
              <dd>
                <Time ms={dep.waitUntil} />
              </dd>
            </>
          )}
          {dep.approvedBy && (
            <>
              <dt>Approved by</dt>
              <dd>
                {dep.approvedBy} at <Time ms={dep.approvedAt} />
              </dd>
            </>
          )}
          {props.coalesced > 0 && (
            <>
              <dt>Coalesced pushes</dt>
              <dd>{props.coalesced}</dd>
            </>
          )}
        </dl>
        {session.canWrite && (
          <div class="actions">
            {dep.status === "awaiting_approval" && <ApprovalLinks id={dep.id} />}
            {dep.digest && (
              <a class="button" href={rollbackTo} data-rollback-link hidden={dep.status !== "succeeded" || undefined}>
                Roll back to this deployment…
              </a>
            )}
          </div>
        )}
        <h2>Timeline</h2>
        <ol class="timeline" aria-live="polite" aria-relevant="additions">
          {events.map((e) => (
            <li data-event-id={String(e.id)}>
              <Time ms={e.at} /> <Status status={e.status} /> <span class="message">{e.message}</span>
            </li>
          ))}
        </ol>
        <p class="live-state muted" hidden></p>
      </div>
    </Layout>
  );
}
