import Database from "better-sqlite3";
import { drizzle } from "drizzle-orm/better-sqlite3";
import type { HistoryQuery } from "../../server/store/deployment-history.js";
import { createDeploymentHistory } from "../../server/store/deployment-history.js";
import { createDeploymentStore } from "../../server/store/deployment-store.js";
import * as schema from "../../server/store/schema.js";

export interface QueryPlan {
  sql: string;
  plan: string[];
  /** A full scan of a table or a sort in a temp b-tree: the query does not get its order or its rows from an index. */
  problems: string[];
}

type Detail = { detail: string };

/**
 * The SQL the server really sends for each read, captured from drizzle's
 * logger while the real store functions run against the database, then fed
 * to EXPLAIN QUERY PLAN with the same parameters.
 */
export function explainReads(path: string, reads: Record<string, HistoryQuery | { byId: string }>): Record<string, QueryPlan[]> {
  const sqlite = new Database(path, { readonly: true, fileMustExist: true });
  try {
    let captured: Array<{ sql: string; params: unknown[] }> = [];
    const db = drizzle(sqlite, { schema, logger: { logQuery: (sql, params) => void captured.push({ sql, params }) } });
    const history = createDeploymentHistory(db);
    const store = createDeploymentStore(db, { now: Date.now, newId: (p) => `${p}_unused` });
    const plans: Record<string, QueryPlan[]> = {};
    for (const [name, read] of Object.entries(reads)) {
      captured = [];
      if ("byId" in read) {
        store.findDeployment(read.byId);
        store.listEvents(read.byId);
      } else {
        history.list(read);
      }
      plans[name] = captured.map(({ sql, params }) => {
        const plan = (sqlite.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...(params as unknown[])) as Detail[]).map((r) => r.detail);
        const problems = plan.filter((d) => /^SCAN \w+$/.test(d) || /TEMP B-TREE/.test(d));
        return { sql, plan, problems };
      });
    }
    return plans;
  } finally {
    sqlite.close();
  }
}
