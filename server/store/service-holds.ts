import { and, eq, sql } from "drizzle-orm";
import type { Db } from "./database.js";
import { quarantinedDigests, serviceHolds } from "./schema.js";

export type ServiceHold = typeof serviceHolds.$inferSelect;
export type Quarantine = typeof quarantinedDigests.$inferSelect;

/**
 * What keeps automatic deploys off a service: its hold (after a manual
 * rollback) and the quarantine of each digest that failed there (lifted by a
 * manual deploy of it).
 */
export function createServiceHolds(db: Db, now: () => number) {
  // Asked once per deployment; prepared once (see statement-cache.ts for why).
  const holdOf = db
    .select()
    .from(serviceHolds)
    .where(eq(serviceHolds.service, sql.placeholder("service")))
    .prepare();
  const quarantineOf = db
    .select()
    .from(quarantinedDigests)
    .where(and(eq(quarantinedDigests.service, sql.placeholder("service")), eq(quarantinedDigests.digest, sql.placeholder("digest"))))
    .prepare();
  return {
    find(service: string): ServiceHold | undefined {
      return holdOf.get({ service });
    },
    all(): ServiceHold[] {
      return db.select().from(serviceHolds).all();
    },
    /** Every quarantined digest, by service (the dashboard lists them beside each service). */
    quarantines(): Map<string, Quarantine[]> {
      const byService = new Map<string, Quarantine[]>();
      for (const q of db.select().from(quarantinedDigests).all()) {
        const list = byService.get(q.service) ?? [];
        list.push(q);
        byService.set(q.service, list);
      }
      return byService;
    },
    hold(service: string, deploymentId: string, reason: string, heldBy: string): void {
      db.insert(serviceHolds)
        .values({ service, deploymentId, reason, heldBy, createdAt: now() })
        .onConflictDoUpdate({ target: serviceHolds.service, set: { deploymentId, reason, heldBy, createdAt: now() } })
        .run();
    },
    /** Returns whether there was a hold to lift. */
    release(service: string): boolean {
      return db.delete(serviceHolds).where(eq(serviceHolds.service, service)).run().changes > 0;
    },
    quarantine(service: string, digest: string, deploymentId: string, reason: string): void {
      db.insert(quarantinedDigests)
        .values({ service, digest, deploymentId, reason, createdAt: now() })
        .onConflictDoUpdate({ target: [quarantinedDigests.service, quarantinedDigests.digest], set: { deploymentId, reason } })
        .run();
    },
    findQuarantine(service: string, digest: string) {
      return quarantineOf.get({ service, digest });
    },
    liftQuarantine(service: string, digest: string): boolean {
      return (
        db
          .delete(quarantinedDigests)
          .where(and(eq(quarantinedDigests.service, service), eq(quarantinedDigests.digest, digest)))
          .run().changes > 0
      );
    },
  };
}

export type ServiceHolds = ReturnType<typeof createServiceHolds>;
