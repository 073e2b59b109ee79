/**
 * Shepherd's FILTER_SERVICES: one `docker service ls --filter` expression.
 * Parsed once at start so a typo fails the config instead of matching nothing.
 */
export type ServiceFilter =
  | { kind: "label"; key: string; value?: string }
  | { kind: "name"; prefix: string }
  | { kind: "id"; prefix: string }
  | { kind: "mode"; mode: "replicated" | "global" };

export function parseServiceFilter(text: string): ServiceFilter {
  const eq = text.indexOf("=");
  if (eq <= 0) throw new Error(`expected key=value (label=, name=, id= or mode=), got "${text}"`);
  const key = text.slice(0, eq).trim().toLowerCase();
  const value = text.slice(eq + 1).trim();
  switch (key) {
    case "label": {
      const inner = value.indexOf("=");
      if (value === "") throw new Error("label= needs a label key");
      return inner === -1 ? { kind: "label", key: value } : { kind: "label", key: value.slice(0, inner), value: value.slice(inner + 1) };
    }
    case "name":
      return { kind: "name", prefix: value };
    case "id":
      return { kind: "id", prefix: value };
    case "mode":
      if (value !== "replicated" && value !== "global") throw new Error(`mode= must be replicated or global, got "${value}"`);
      return { kind: "mode", mode: value };
    default:
      throw new Error(`unsupported filter "${key}" (use label=, name=, id= or mode=)`);
  }
}

export interface FilterableService {
  id: string;
  name: string;
  labels: Record<string, string>;
  mode: "replicated" | "global";
}

/** Same semantics as the engine's service list filters: name and id match by prefix. */
export function matchesServiceFilter(service: FilterableService, filter: ServiceFilter | undefined): boolean {
  if (!filter) return true;
  switch (filter.kind) {
    case "label":
      return filter.value === undefined ? filter.key in service.labels : service.labels[filter.key] === filter.value;
    case "name":
      return service.name.startsWith(filter.prefix);
    case "id":
      return service.id.startsWith(filter.prefix);
    case "mode":
      return service.mode === filter.mode;
  }
}
