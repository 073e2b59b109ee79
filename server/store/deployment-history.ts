import { and, desc, eq, inArray, isNotNull, lt, ne, or, sql, type SQL } from "drizzle-orm";
import { waitingStatuses, webhookTriggers, type DeploymentStatus, type TriggerKind } from "../domain/deployment.js";
import type { Db } from "./database.js";
import type { DeploymentRecord } from "./deployment-store.js";
import type { TriggerRecord } from "./deployment-store.js";
import { deployments, triggers } from "./schema.js";

export interface HistoryQuery {
  service?: string;
  status?: DeploymentStatus;
  trigger?: TriggerKind;
  limit: number;
  /** Only deployments older than this id (keyset pagination: ids sort by creation). */
  beforeId?: string;
}

/**
 * Read side of the deployment record. Pages by keyset on the time-ordered id
 * (never OFFSET), so page 10,000 costs what page 1 costs: each filter has an
 * index that ends in `id`.
 */
export function createDeploymentHistory(db: Db) {
  /** The newest deployment that meets `where`, if any. */
  const newest = (where: SQL | undefined) =>
    db.select().from(deployments).where(where).orderBy(desc(deployments.id)).limit(1).get() as DeploymentRecord | undefined;

  // Asked once per service for each service list (200 services: 200 reads); prepared once, as statement-cache.ts explains.
  const newestOfService = db
    .select()
    .from(deployments)
    .where(eq(deployments.service, sql.placeholder("service")))
    .orderBy(desc(deployments.id))
    .limit(1)
    .prepare();

  return {
    /** Newest first; returns one row more than `limit` when there is a next page. */
    list(query: HistoryQuery): { items: DeploymentRecord[]; hasMore: boolean } {
      const conditions: SQL[] = [];
      if (query.service) conditions.push(eq(deployments.service, query.service));
      if (query.status) conditions.push(eq(deployments.status, query.status));
      if (query.trigger) conditions.push(eq(deployments.trigger, query.trigger));
      if (query.beforeId) conditions.push(lt(deployments.id, query.beforeId));
      const rows = db
        .select()
        .from(deployments)
        .where(conditions.length ? and(...conditions) : undefined)
        .orderBy(desc(deployments.id))
        .limit(query.limit + 1)
        .all() as DeploymentRecord[];
      return { items: rows.slice(0, query.limit), hasMore: rows.length > query.limit };
    },

    newestOf(service: string): DeploymentRecord | undefined {
      return newestOfService.get({ service }) as DeploymentRecord | undefined;
    },

    /** The rollback target when none is named: the newest success whose digest is not the running one. */
    newestSucceededOtherThan(service: string, runningDigest: string | undefined): DeploymentRecord | undefined {
      const conditions = [eq(deployments.service, service), eq(deployments.status, "succeeded")];
      if (runningDigest) conditions.push(ne(deployments.digest, runningDigest));
      return newest(and(...conditions));
    },

    /** The newest deployment that put an image into the service's spec (or saw one put there): the one with a pinned image. */
    latestAppliedOf(service: string): DeploymentRecord | undefined {
      return newest(and(eq(deployments.service, service), isNotNull(deployments.pinnedImage)));
    },

    /** A deployment of the service that is still queued or running, whatever started it. */
    findUnfinishedOf(service: string): DeploymentRecord | undefined {
      return db
        .select()
        .from(deployments)
        .where(and(eq(deployments.service, service), inArray(deployments.status, ["queued", "running"])))
        .limit(1)
        .get() as DeploymentRecord | undefined;
    },

    /** The newest deployment a registry webhook recorded for this digest on this service (resolved or hinted). */
    /**
     * The newest webhook that announced `digest` of `imageKey`, deployed or
     * not: one that arrived while the engine could not be asked which services
     * run it is recorded as a trigger with no deployment.
     */
    findWebhookTriggerOf(imageKey: string, digest: string): TriggerRecord | undefined {
      return db
        .select()
        .from(triggers)
        .where(and(inArray(triggers.kind, [...webhookTriggers]), eq(triggers.imageKey, imageKey), eq(triggers.digestHint, digest)))
        .orderBy(desc(triggers.id))
        .limit(1)
        .get() as TriggerRecord | undefined;
    },

    findWebhookDeploymentOf(service: string, digest: string): DeploymentRecord | undefined {
      return newest(
        and(
          eq(deployments.service, service),
          inArray(deployments.trigger, [...webhookTriggers]),
          or(eq(deployments.digest, digest), eq(deployments.digestHint, digest)),
        ),
      );
    },

    /**
     * A deployment of `digest` on the service that waits at a gate (cool-down, window, approval) or that was
     * rejected: the poller asks nothing more of that digest. Asking would supersede the waiting one with a copy
     * of itself each cycle (and ask for approval again), or ask again for what someone turned down.
     */
    findWaitingOrRejectedOf(service: string, digest: string): DeploymentRecord | undefined {
      return newest(
        and(
          eq(deployments.service, service),
          inArray(deployments.status, [...waitingStatuses, "rejected"]),
          or(eq(deployments.digest, digest), eq(deployments.digestHint, digest)),
        ),
      );
    },

    /** The newest deployment before `beforeId` that changed the service or tried to: succeeded, failed or rolled back. */
    findPreviousOutcome(service: string, beforeId: string): DeploymentRecord | undefined {
      return newest(
        and(eq(deployments.service, service), lt(deployments.id, beforeId), inArray(deployments.status, ["succeeded", "failed", "rolled_back"])),
      );
    },
  };
}

export type DeploymentHistory = ReturnType<typeof createDeploymentHistory>;
