import { waitingStatuses } from "../../../domain/deployment.js";
import type { ManagedService } from "../../../operations/list-services.js";
import type { DeploymentRecord } from "../../../store/deployment-store.js";
import type { Quarantine } from "../../../store/service-holds.js";
import type { Session } from "../sessions.js";
import { ApprovalLinks, Digest, Layout, Status, Time } from "./layout.js";

const q = encodeURIComponent;

/** The service's last deployment, with its outcome and, while a gate holds it, what it waits for. */
export function LastDeployment({ dep }: { dep: DeploymentRecord | null }) {
  if (!dep) return <span class="muted">none yet</span>;
  return (
    <span>
      <a href={`/deployments/${dep.id}`} data-status-of={dep.id}>
        <Status status={dep.status} />
      </a>{" "}
      <span class="muted">
        {dep.trigger} · <Time ms={dep.createdAt} />
      </span>
      {waitingStatuses.has(dep.status) && dep.waitUntil !== null && (
        <span class="muted">
          {" "}
          · until <Time ms={dep.waitUntil} />
        </span>
      )}
    </span>
  );
}

function Actions({ s, session }: { s: ManagedService; session: Session }) {
  const base = `/services/${q(s.name)}`;
  const last = s.lastDeployment;
  return (
    <div class="actions">
      {last?.status === "awaiting_approval" && <ApprovalLinks id={last.id} />}
      <a class="button" href={`${base}/rollback`}>
        Roll back…
      </a>
      {s.held && (
        <a class="button" href={`${base}/resume`}>
          Resume…
        </a>
      )}
      <form method="get" action={`${base}/deploy`} class="inline">
        <label for={`tag-${s.name}`} class="visually-hidden">
          Tag to deploy to {s.name}
        </label>
        <input id={`tag-${s.name}`} name="tag" required maxlength={128} placeholder="tag" autocomplete="off" size={10} />
        <button type="submit">Deploy…</button>
      </form>
    </div>
  );
}

export function ServicesPage(props: { session: Session; services: ManagedService[]; quarantines: Map<string, Quarantine[]> }) {
  const { session, services } = props;
  return (
    <Layout title="Services" session={session} page="services" live="services">
      <h1>Services</h1>
      <p class="muted">
        {services.length} managed service{services.length === 1 ? "" : "s"}. Status changes, and the digest a deployment moved a service to, arrive
        live.
      </p>
      <p class="live-state muted" aria-live="polite" hidden></p>
      <table class="cards services">
        <thead>
          <tr>
            <th scope="col">Service</th>
            <th scope="col">Image and running digest</th>
            <th scope="col">Replicas</th>
            <th scope="col">Hold and quarantine</th>
            <th scope="col">Last deployment</th>
            {session.canWrite && <th scope="col">Actions</th>}
          </tr>
        </thead>
        <tbody>
          {services.map((s) => {
            const quarantined = props.quarantines.get(s.name) ?? [];
            return (
              <tr data-service={s.name}>
                <th scope="row" data-label="Service">
                  <a href={`/history?service=${q(s.name)}`}>{s.name}</a>
                  {s.policyErrors.length > 0 && <span class="notice-inline"> labels unreadable: {s.policyErrors.join("; ")}</span>}
                </th>
                <td data-label="Image" data-image>
                  <code class="image">{s.image.split("@")[0]}</code>
                  <br />
                  <Digest digest={s.digest} none="not pinned to a digest" />
                </td>
                <td data-label="Replicas">
                  {s.mode === "global" ? `${s.runningTasks ?? "?"} running (global)` : `${s.runningTasks ?? "?"}/${s.replicas ?? "?"}`}
                </td>
                <td data-label="Hold">
                  {s.hold ? (
                    <span>
                      <span class="status status-held">held</span> <span class="muted">{s.hold.reason}</span>
                    </span>
                  ) : (
                    <span class="muted">not held</span>
                  )}
                  {quarantined.length > 0 && (
                    <ul class="quarantine" aria-label={`Quarantined digests of ${s.name}`}>
                      {quarantined.map((d) => (
                        <li>
                          quarantined <Digest digest={d.digest} /> (<a href={`/deployments/${d.deploymentId}`}>why</a>)
                        </li>
                      ))}
                    </ul>
                  )}
                </td>
                <td data-label="Last deployment" data-last>
                  <LastDeployment dep={s.lastDeployment} />
                </td>
                {session.canWrite && (
                  <td data-label="Actions">
                    <Actions s={s} session={session} />
                  </td>
                )}
              </tr>
            );
          })}
        </tbody>
      </table>
    </Layout>
  );
}
