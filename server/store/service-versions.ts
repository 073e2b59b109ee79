import { eq } from "drizzle-orm";
import type { Db } from "./database.js";
import { serviceVersions } from "./schema.js";

export type ServiceVersion = typeof serviceVersions.$inferSelect;

/** The spec version and image the drift watcher last saw of each service. */
export function createServiceVersions(db: Db) {
  return {
    find(serviceId: string): ServiceVersion | undefined {
      return db.select().from(serviceVersions).where(eq(serviceVersions.serviceId, serviceId)).get();
    },
    all(): ServiceVersion[] {
      return db.select().from(serviceVersions).all();
    },
    save(row: ServiceVersion): void {
      const { service, version, image, seenAt } = row;
      db.insert(serviceVersions)
        .values(row)
        .onConflictDoUpdate({ target: serviceVersions.serviceId, set: { service, version, image, seenAt } })
        .run();
    },
    remove(serviceId: string): void {
      db.delete(serviceVersions).where(eq(serviceVersions.serviceId, serviceId)).run();
    },
  };
}

export type ServiceVersions = ReturnType<typeof createServiceVersions>;
