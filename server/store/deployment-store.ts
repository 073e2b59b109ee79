import { and, asc, eq, inArray } from "drizzle-orm";
import type { DeploymentStatus, TriggerKind } from "../domain/deployment.js";
import type { Db } from "./database.js";
import { deploymentEvents, deployments, quarantinedDigests, triggers } from "./schema.js";

export type DeploymentRecord = Omit<typeof deployments.$inferSelect, "status" | "trigger" | "failureKind"> & {
  status: DeploymentStatus;
  trigger: TriggerKind;
  failureKind: FailureKind | null;
};
export type TriggerRecord = Omit<typeof triggers.$inferSelect, "kind"> & { kind: TriggerKind };
export type DeploymentEventRecord = { at: number; status: DeploymentStatus; message: string };

/** Why a deployment failed: the rollout itself, or the machinery around it (engine, registry). */
export type FailureKind = "rollout" | "error";

export interface NewTrigger {
  kind: TriggerKind;
  eventKey: string;
  imageKey: string;
  digestHint?: string;
  requestedBy: string;
  callbackUrl?: string;
}

export interface NewDeployment {
  service: string;
  serviceId: string;
  image: string;
  imageKey: string;
  digestHint?: string;
  digest?: string;
  previousImage?: string;
  trigger: TriggerKind;
  requestedBy: string;
  /** First timeline entry, e.g. "received registry push of …". */
  message: string;
}

export type DeploymentPatch = Partial<
  Pick<
    DeploymentRecord,
    "status" | "message" | "digest" | "pinnedImage" | "previousImage" | "failureKind" | "startedAt" | "updateSentAt" | "finishedAt" | "serviceId"
  >
>;

export interface StoreClock {
  now(): number;
  newId(prefix: string): string;
}

export type DeploymentStore = ReturnType<typeof createDeploymentStore>;

export function createDeploymentStore(db: Db, clock: StoreClock) {
  const asDeployment = (row: typeof deployments.$inferSelect) => row as DeploymentRecord;

  function findDeployment(id: string): DeploymentRecord | undefined {
    const row = db.select().from(deployments).where(eq(deployments.id, id)).get();
    return row && asDeployment(row);
  }

  function getDeployment(id: string): DeploymentRecord {
    const found = findDeployment(id);
    if (!found) throw new Error(`deployment ${id} does not exist`);
    return found;
  }

  return {
    findDeployment,
    getDeployment,

    findTriggerByKey(kind: TriggerKind, eventKey: string): TriggerRecord | undefined {
      return db
        .select()
        .from(triggers)
        .where(and(eq(triggers.kind, kind), eq(triggers.eventKey, eventKey)))
        .get() as TriggerRecord | undefined;
    },

    getTrigger(id: string): TriggerRecord | undefined {
      return db.select().from(triggers).where(eq(triggers.id, id)).get() as TriggerRecord | undefined;
    },

    /**
     * Commits the trigger and its queued deployments in one transaction,
     * before the webhook is answered. A trigger whose event key was already
     * recorded writes nothing and returns the earlier one.
     */
    recordTrigger(
      trigger: NewTrigger,
      newDeployments: NewDeployment[],
      /** Runs inside the same transaction once the deployments exist (e.g. to hold the service). */
      alongside?: (deployments: DeploymentRecord[]) => void,
    ): { duplicate: false; trigger: TriggerRecord; deployments: DeploymentRecord[] } | { duplicate: true; trigger: TriggerRecord } {
      return db.transaction((tx) => {
        const at = clock.now();
        const inserted = tx
          .insert(triggers)
          .values({ id: clock.newId("trg"), receivedAt: at, ...trigger })
          .onConflictDoNothing()
          .returning()
          .get() as TriggerRecord | undefined;
        if (!inserted) {
          const existing = tx
            .select()
            .from(triggers)
            .where(and(eq(triggers.kind, trigger.kind), eq(triggers.eventKey, trigger.eventKey)))
            .get() as TriggerRecord;
          return { duplicate: true as const, trigger: existing };
        }
        const rows = newDeployments.map((d) => {
          const { message, ...fields } = d;
          const row = tx
            .insert(deployments)
            .values({ id: clock.newId("dep"), triggerId: inserted.id, status: "queued", createdAt: at, message, ...fields })
            .returning()
            .get();
          tx.insert(deploymentEvents).values({ deploymentId: row.id, at, status: "queued", message }).run();
          return asDeployment(row);
        });
        alongside?.(rows);
        return { duplicate: false as const, trigger: inserted, deployments: rows };
      });
    },

    /** Applies a patch and appends the timeline entry that explains it, atomically. */
    transition(id: string, patch: DeploymentPatch, eventMessage?: string): DeploymentRecord {
      return db.transaction((tx) => {
        const at = clock.now();
        const row = tx
          .update(deployments)
          .set({ ...patch, ...(eventMessage && patch.message === undefined && patch.status ? { message: eventMessage } : {}) })
          .where(eq(deployments.id, id))
          .returning()
          .get();
        if (!row) throw new Error(`deployment ${id} does not exist`);
        if (eventMessage) tx.insert(deploymentEvents).values({ deploymentId: id, at, status: row.status, message: eventMessage }).run();
        return asDeployment(row);
      });
    },

    addEvent(id: string, message: string): void {
      const current = getDeployment(id);
      db.insert(deploymentEvents).values({ deploymentId: id, at: clock.now(), status: current.status, message }).run();
    },

    listEvents(id: string): DeploymentEventRecord[] {
      return db
        .select({ at: deploymentEvents.at, status: deploymentEvents.status, message: deploymentEvents.message })
        .from(deploymentEvents)
        .where(eq(deploymentEvents.deploymentId, id))
        .orderBy(asc(deploymentEvents.id))
        .all() as DeploymentEventRecord[];
    },

    /** Deployments a crash may have interrupted, oldest first. */
    findUnfinished(): DeploymentRecord[] {
      return db
        .select()
        .from(deployments)
        .where(inArray(deployments.status, ["queued", "running"]))
        .orderBy(asc(deployments.id))
        .all()
        .map(asDeployment);
    },

    findByTrigger(triggerId: string): DeploymentRecord[] {
      return db.select().from(deployments).where(eq(deployments.triggerId, triggerId)).orderBy(asc(deployments.id)).all().map(asDeployment);
    },

    setCallbackState(triggerId: string, state: string): void {
      db.update(triggers).set({ callbackState: state }).where(eq(triggers.id, triggerId)).run();
    },

    quarantine(service: string, digest: string, deploymentId: string, reason: string): void {
      db.insert(quarantinedDigests)
        .values({ service, digest, deploymentId, reason, createdAt: clock.now() })
        .onConflictDoUpdate({ target: [quarantinedDigests.service, quarantinedDigests.digest], set: { deploymentId, reason } })
        .run();
    },

    findQuarantine(service: string, digest: string) {
      return db
        .select()
        .from(quarantinedDigests)
        .where(and(eq(quarantinedDigests.service, service), eq(quarantinedDigests.digest, digest)))
        .get();
    },
  };
}
