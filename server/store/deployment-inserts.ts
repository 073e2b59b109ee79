import { sql } from "drizzle-orm";
import type { Db } from "./database.js";
import type { createCoalescedEvents } from "./coalesced-events.js";
import type { Coalesced, DeploymentRecord, NewDeployment, RecordHooks } from "./records.js";
import { deploymentEvents, deployments, triggers } from "./schema.js";
import { createStatementCache, definedValues, placeholdersFor, shapeKey } from "./statement-cache.js";

/** The inserts of the deployment store: a trigger's deployments, each with its first timeline row. */
export function createDeploymentInserts(
  db: Db,
  clock: { newId(prefix: string): string },
  coalesced_: Pick<ReturnType<typeof createCoalescedEvents>, "record">,
) {
  const p = sql.placeholder;
  const cached = createStatementCache();
  const asDeployment = (row: typeof deployments.$inferSelect) => row as DeploymentRecord;
  const insertEvent = db
    .insert(deploymentEvents)
    .values({ deploymentId: p("deploymentId"), at: p("at"), status: p("status"), message: p("message") })
    .prepare();

  function insertReturning<T>(
    table: typeof triggers | typeof deployments,
    name: string,
    values: Record<string, unknown>,
    ignoreConflict = false,
  ): T | undefined {
    const statement = cached(shapeKey(name, values), () => {
      const insert = db.insert(table).values(placeholdersFor(values) as never);
      return (ignoreConflict ? insert.onConflictDoNothing() : insert).returning().prepare();
    });
    return statement.get(values) as T | undefined;
  }

  /** The deployments of a trigger, less those coalesced into one already there; then `alongside`. */
  function insertForTrigger(triggerId: string, newDeployments: NewDeployment[], at: number, hooks: RecordHooks) {
    const coalesced: Coalesced[] = [];
    const written: NewDeployment[] = [];
    for (const d of newDeployments) {
      const into = hooks.coalesce?.(d);
      if (into === undefined) {
        written.push(d);
        continue;
      }
      coalesced_.record(triggerId, into, at);
      coalesced.push({ service: d.service, deploymentId: into });
    }
    const rows = insertDeployments(triggerId, written, at);
    hooks.alongside?.(rows);
    return { rows, coalesced };
  }

  function insertDeployments(triggerId: string, newDeployments: NewDeployment[], at: number): DeploymentRecord[] {
    return newDeployments.map((d) => {
      const { message, ...fields } = d;
      const values = definedValues({ id: clock.newId("dep"), triggerId, status: "queued", createdAt: at, message, ...fields });
      const row = insertReturning<typeof deployments.$inferSelect>(deployments, "deployment", values)!;
      insertEvent.run({ deploymentId: row.id, at, status: "queued", message });
      return asDeployment(row);
    });
  }

  return { insertEvent, insertReturning, insertForTrigger };
}
