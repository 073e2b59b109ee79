import { deploymentStatuses, triggerKinds } from "../../../domain/deployment.js";
import type { DeploymentRecord } from "../../../store/deployment-store.js";
import type { Session } from "../sessions.js";
import { Digest, Layout, Status, Time } from "./layout.js";

export interface HistoryFilters {
  service?: string;
  status?: string;
  trigger?: string;
  cursor?: string;
}

export function DeploymentRow({ d }: { d: DeploymentRecord }) {
  return (
    <tr data-id={d.id}>
      <td data-label="Created">
        <a href={`/deployments/${d.id}`}>
          <Time ms={d.createdAt} />
        </a>
      </td>
      <td data-label="Service">{d.service}</td>
      <td data-label="Image">
        <code class="image">{d.image}</code> <Digest digest={d.digest} />
      </td>
      <td data-label="Trigger">{d.trigger}</td>
      <td data-label="Status" data-status>
        <Status status={d.status} />
      </td>
      <td data-label="Requested by">{d.requestedBy}</td>
    </tr>
  );
}

function query(filters: HistoryFilters, cursor?: string): string {
  const params = new URLSearchParams();
  for (const key of ["service", "status", "trigger"] as const) if (filters[key]) params.set(key, filters[key]!);
  if (cursor) params.set("cursor", cursor);
  const text = params.toString();
  return text ? `/history?${text}` : "/history";
}

function Select(props: { name: string; label: string; options: readonly string[]; value?: string }) {
  return (
    <p class="field">
      <label for={`filter-${props.name}`}>{props.label}</label>
      <select id={`filter-${props.name}`} name={props.name}>
        <option value="">any</option>
        {props.options.map((o) => (
          <option value={o} selected={o === props.value}>
            {o.replaceAll("_", " ")}
          </option>
        ))}
      </select>
    </p>
  );
}

export function HistoryPage(props: { session: Session; filters: HistoryFilters; items: DeploymentRecord[]; nextCursor: string | null }) {
  const { filters } = props;
  const first = !filters.cursor;
  return (
    <Layout title="History" session={props.session} page="history" live="history">
      <h1>History</h1>
      <form method="get" action="/history" class="filters" role="search" aria-label="Filter deployments">
        <p class="field">
          <label for="filter-service">Service</label>
          <input id="filter-service" name="service" value={filters.service ?? ""} maxlength={128} autocomplete="off" />
        </p>
        <Select name="status" label="Status" options={deploymentStatuses} value={filters.status} />
        <Select name="trigger" label="Trigger" options={triggerKinds} value={filters.trigger} />
        <p class="field">
          <button type="submit">Filter</button>
        </p>
      </form>
      <p class="live-state muted" aria-live="polite" hidden></p>
      <table
        class="cards history"
        data-first-page={first ? "true" : "false"}
        data-filter-service={filters.service ?? ""}
        data-filter-status={filters.status ?? ""}
        data-filter-trigger={filters.trigger ?? ""}
      >
        <caption class="visually-hidden">Deployments, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Created</th>
            <th scope="col">Service</th>
            <th scope="col">Image</th>
            <th scope="col">Trigger</th>
            <th scope="col">Status</th>
            <th scope="col">Requested by</th>
          </tr>
        </thead>
        <tbody>
          {props.items.map((d) => (
            <DeploymentRow d={d} />
          ))}
        </tbody>
      </table>
      {props.items.length === 0 && <p class="muted empty">No deployments match.</p>}
      <nav class="pager" aria-label="Pages">
        {!first && <a href={query(filters)}>Newest</a>}
        {props.nextCursor && (
          <a href={query(filters, props.nextCursor)} rel="next">
            Older
          </a>
        )}
      </nav>
    </Layout>
  );
}
