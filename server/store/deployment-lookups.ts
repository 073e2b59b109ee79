import { and, desc, eq, isNotNull, sql } from "drizzle-orm";
import type { Db } from "./database.js";
import type { DeploymentRecord } from "./records.js";
import { deployments } from "./schema.js";

/** Single-row lookups the deployer's rules ask for: a service's latest deployment, a digest's first record. */
export function createDeploymentLookups(db: Db) {
  const p = sql.placeholder;
  const latestOfService = db
    .select()
    .from(deployments)
    .where(eq(deployments.service, p("service")))
    .orderBy(desc(deployments.id))
    .limit(1)
    .prepare();
  const firstOfDigest = db
    .select({ at: sql<number | null>`min(${deployments.createdAt})` })
    .from(deployments)
    .where(and(isNotNull(deployments.digest), eq(deployments.digest, p("digest"))))
    .prepare();

  // Newest first among the superseded approvals of this digest on the service, since its latest success.
  const approvalOfDigest = db.$client.prepare(
    `select id, approved_by as approvedBy, approved_at as approvedAt from deployments
     where digest = ? and service = ? and status = 'superseded' and approved_at is not null
       and id > coalesce((select max(id) from deployments where service = ? and status = 'succeeded'), '')
     order by id desc limit 1`,
  );

  return {
    /**
     * An approval given to this digest on the service that no deployment used (a newer request of the same digest
     * superseded it), and none succeeded on the service since: it still stands.
     */
    standingApproval(service: string, digest: string): { id: string; approvedBy: string; approvedAt: number } | undefined {
      return approvalOfDigest.get(digest, service, service) as { id: string; approvedBy: string; approvedAt: number } | undefined;
    },

    /** The service's most recent deployment. */
    latestOf(service: string): DeploymentRecord | undefined {
      return latestOfService.get({ service }) as DeploymentRecord | undefined;
    },

    /** When a deployment (of any service) first recorded this digest: the push time deployer.min-age counts from. */
    firstRecorded(digest: string): number | undefined {
      return firstOfDigest.get({ digest })?.at ?? undefined;
    },
  };
}
