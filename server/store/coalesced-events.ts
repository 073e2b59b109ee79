import { and, desc, eq, isNotNull, isNull, sql } from "drizzle-orm";
import type { TriggerKind } from "../domain/deployment.js";
import type { Db } from "./database.js";
import type { TriggerRecord } from "./records.js";
import { coalescedEvents, triggers } from "./schema.js";

/** The record of pushes coalesced into a deployment that already covered them (engine/coalesce.ts decides). */
export function createCoalescedEvents(db: Db) {
  const p = sql.placeholder;
  // Once per push of a burst (store/raw-rows.ts says why on the raw connection).
  const insert = db.$client.prepare(
    "insert into coalesced_events (trigger_id, deployment_id, at) values (@triggerId, @deploymentId, @at) on conflict do nothing",
  );
  const count = db
    .select({ count: sql<number>`count(*)` })
    .from(coalescedEvents)
    .where(eq(coalescedEvents.deploymentId, p("id")))
    .prepare();
  const latest = db
    .select({ triggerId: coalescedEvents.triggerId, kind: triggers.kind, at: coalescedEvents.at })
    .from(coalescedEvents)
    .innerJoin(triggers, eq(triggers.id, coalescedEvents.triggerId))
    .where(eq(coalescedEvents.deploymentId, p("id")))
    .orderBy(desc(coalescedEvents.at), desc(coalescedEvents.triggerId))
    .limit(p("limit"))
    .prepare();

  return {
    record(triggerId: string, deploymentId: string, at: number): void {
      insert.run({ triggerId, deploymentId, at });
    },

    countAndLatest(deploymentId: string, limit: number): { count: number; latest: Array<{ triggerId: string; kind: TriggerKind; at: number }> } {
      const n = count.get({ id: deploymentId })?.count ?? 0;
      return {
        count: n,
        latest: n === 0 ? [] : (latest.all({ id: deploymentId, limit }) as Array<{ triggerId: string; kind: TriggerKind; at: number }>),
      };
    },

    /**
     * The pushes coalesced into a deployment whose callback is still to be sent. A burst coalesces thousands into
     * one deployment, and a registry's push carries a callback URL only on Docker Hub: the rest are not read.
     */
    awaitingCallbackInto(deploymentId: string): TriggerRecord[] {
      return db
        .select({ trigger: triggers })
        .from(coalescedEvents)
        .innerJoin(triggers, eq(triggers.id, coalescedEvents.triggerId))
        .where(and(eq(coalescedEvents.deploymentId, deploymentId), isNotNull(triggers.callbackUrl), isNull(triggers.callbackState)))
        .all()
        .map((r) => r.trigger as TriggerRecord);
    },

    /** A subquery: the deployments a trigger was coalesced into. */
    targetsOf(triggerId: string) {
      return db.select({ id: coalescedEvents.deploymentId }).from(coalescedEvents).where(eq(coalescedEvents.triggerId, triggerId));
    },
  };
}
