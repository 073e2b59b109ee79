import type { Statement } from "better-sqlite3";
import { getTableName } from "drizzle-orm";
import type { Db } from "./database.js";
import type { createCoalescedEvents } from "./coalesced-events.js";
import { columnName, writtenRow } from "./raw-rows.js";
import type { Coalesced, DeploymentRecord, NewDeployment, RecordHooks } from "./records.js";
import { deployments, triggers } from "./schema.js";
import { createStatementCache, definedValues, shapeKey } from "./statement-cache.js";

/** The inserts of the deployment store: a trigger's deployments, each with its first timeline row. */
export function createDeploymentInserts(
  db: Db,
  clock: { newId(prefix: string): string },
  coalesced_: Pick<ReturnType<typeof createCoalescedEvents>, "record">,
) {
  const sqlite = db.$client;
  const cached = createStatementCache();
  const rowOf = { triggers: writtenRow(triggers), deployments: writtenRow(deployments) };
  const insertEvent = sqlite.prepare(
    "insert into deployment_events (deployment_id, at, status, message) values (@deploymentId, @at, @status, @message)",
  );

  /**
   * Inserts a row of the given columns (one statement per set of columns) and returns it as a select would read
   * it; undefined when `ignoreConflict` and a unique key was taken already, so nothing was written.
   */
  function insertRow<T>(table: typeof triggers | typeof deployments, values: Record<string, unknown>, ignoreConflict = false): T | undefined {
    const name = getTableName(table) as keyof typeof rowOf;
    const statement = cached(shapeKey(`${name}${ignoreConflict ? "?" : ""}`, values), (): Statement => {
      const keys = Object.keys(values);
      const columns = keys.map((k) => `"${columnName(table, k)}"`).join(", ");
      const params = keys.map((k) => `@${k}`).join(", ");
      return sqlite.prepare(`insert into "${name}" (${columns}) values (${params})${ignoreConflict ? " on conflict do nothing" : ""}`);
    });
    return statement.run(values).changes === 0 ? undefined : rowOf[name]<T>(values);
  }

  /** The deployments of a trigger, less those coalesced into one already there; then `alongside`. */
  function insertForTrigger(triggerId: string | null, newDeployments: NewDeployment[], at: number, hooks: RecordHooks) {
    const coalesced: Coalesced[] = [];
    const written: NewDeployment[] = [];
    for (const d of newDeployments) {
      const into = hooks.coalesce?.(d);
      if (into === undefined) {
        written.push(d);
        continue;
      }
      if (triggerId !== null) coalesced_.record(triggerId, into, at);
      coalesced.push({ service: d.service, deploymentId: into });
    }
    const rows = insertDeployments(triggerId, written, at);
    hooks.alongside?.(rows);
    return { rows, coalesced };
  }

  function insertDeployments(triggerId: string | null, newDeployments: NewDeployment[], at: number): DeploymentRecord[] {
    return newDeployments.map((d) => {
      const { message, ...fields } = d;
      const values = definedValues({ id: clock.newId("dep"), triggerId, status: "queued", createdAt: at, message, ...fields });
      const row = insertRow<DeploymentRecord>(deployments, values)!;
      insertEvent.run({ deploymentId: row.id, at, status: "queued", message });
      return row;
    });
  }

  return { insertEvent, insertRow, insertForTrigger };
}
