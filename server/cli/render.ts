/** How the CLI shows the API's objects to a person (`--json` prints them as the API sent them). */
import { UNPRINTABLE } from "../domain/unprintable.js";

export interface DeploymentJson {
  id: string;
  service: string;
  image: string;
  digest: string | null;
  previousImage: string | null;
  trigger: string;
  status: string;
  message: string | null;
  requestedBy: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface DeploymentDetailJson extends DeploymentJson {
  events: Array<{ at: string; status: string; message: string }>;
  coalesced?: { count: number };
}

export interface ServiceJson {
  name: string;
  image: string;
  digest: string | null;
  replicas: number | null;
  mode: string;
  held: boolean;
  hold: { reason: string; heldBy: string } | null;
  lastDeployment: DeploymentJson | null;
}

const UNPRINTABLE_ALL = new RegExp(UNPRINTABLE.source, "g");
const escaped = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/**
 * Text from the server (a task's error, a label, a message) shown as it is, its control characters written as
 * `\uXXXX`: nothing it holds can drive the terminal or fake a line of the output.
 */
export const printable = (text: string) => text.replace(UNPRINTABLE_ALL, escaped);

/**
 * The same for whole output, line breaks kept. In JSON a `\uXXXX` escape is the character itself, so JSON output
 * passed through it parses to the same value (JSON.stringify already escapes C0 controls, but not C1 or bidi ones).
 */
export const printableLines = (text: string) => text.split("\n").map(printable).join("\n");

/** Columns padded to their widest cell; the last one is not padded. */
export function table(header: string[], cells: string[][]): string {
  const rows = cells.map((r) => r.map(printable));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

export const shortDigest = (digest: string | null) => (digest ? digest.replace(/^sha256:/, "").slice(0, 12) : "-");
const time = (iso: string | null) => (iso ? iso.replace("T", " ").replace(/\.\d+Z$/, "Z") : "-");

export function servicesTable(items: ServiceJson[]): string {
  if (items.length === 0) return "(no managed services)";
  return table(
    ["NAME", "IMAGE", "DIGEST", "REPLICAS", "HELD", "LAST DEPLOYMENT"],
    items.map((s) => [
      s.name,
      s.image,
      shortDigest(s.digest),
      s.mode === "global" ? "global" : String(s.replicas ?? "-"),
      s.held ? "held" : "-",
      s.lastDeployment ? `${s.lastDeployment.status} ${s.lastDeployment.id}` : "-",
    ]),
  );
}

export function historyTable(items: DeploymentJson[]): string {
  if (items.length === 0) return "(no deployments)";
  return table(
    ["ID", "SERVICE", "STATUS", "TRIGGER", "DIGEST", "CREATED", "BY"],
    items.map((d) => [d.id, d.service, d.status, d.trigger, shortDigest(d.digest), time(d.createdAt), d.requestedBy]),
  );
}

export function deploymentText(d: DeploymentDetailJson): string {
  const fields: Array<[string, string]> = [
    ["id", d.id],
    ["service", d.service],
    ["status", d.status],
    ["image", d.image],
    ["digest", d.digest ?? "-"],
    ["replaced", d.previousImage ?? "-"],
    ["trigger", d.trigger],
    ["by", d.requestedBy],
    ["created", time(d.createdAt)],
    ["started", time(d.startedAt)],
    ["finished", time(d.finishedAt)],
  ];
  if (d.message) fields.push(["message", d.message]);
  if (d.coalesced?.count) fields.push(["coalesced", `${d.coalesced.count} later push events`]);
  const head = fields.map(([k, v]) => `${k.padEnd(9)} ${printable(v)}`).join("\n");
  const timeline = d.events.map((e) => `  ${printable(time(e.at))}  ${printable(e.status.padEnd(11))} ${printable(e.message)}`).join("\n");
  return `${head}\ntimeline\n${timeline}`;
}
