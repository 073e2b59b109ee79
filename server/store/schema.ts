import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

/** Every accepted webhook delivery (or manual request); its event key makes redelivery a no-op. */
export const triggers = sqliteTable(
  "triggers",
  {
    id: text("id").primaryKey(),
    kind: text("kind").notNull(),
    eventKey: text("event_key").notNull(),
    imageKey: text("image_key").notNull(),
    digestHint: text("digest_hint"),
    requestedBy: text("requested_by").notNull(),
    callbackUrl: text("callback_url"),
    callbackState: text("callback_state"),
    receivedAt: integer("received_at").notNull(),
    /** Set while the push waits to be matched to services: the engine did not answer when it came. */
    unmatchedSince: integer("unmatched_since"),
    /** The webhook token's `services` claim (JSON array), kept for a push matched later. */
    allowedServices: text("allowed_services"),
  },
  (t) => [
    uniqueIndex("triggers_kind_event_key").on(t.kind, t.eventKey),
    // Only the pushes waiting to be matched (rare) are in it: a webhook's commit then writes one index page fewer.
    index("triggers_unmatched_since")
      .on(t.unmatchedSince, t.id)
      .where(sql`${t.unmatchedSince} is not null`),
  ],
);

export const deployments = sqliteTable(
  "deployments",
  {
    id: text("id").primaryKey(),
    triggerId: text("trigger_id").references(() => triggers.id),
    service: text("service").notNull(),
    serviceId: text("service_id").notNull(),
    image: text("image").notNull(),
    imageKey: text("image_key").notNull(),
    digestHint: text("digest_hint"),
    digest: text("digest"),
    pinnedImage: text("pinned_image"),
    previousImage: text("previous_image"),
    trigger: text("trigger").notNull(),
    status: text("status").notNull(),
    message: text("message"),
    failureKind: text("failure_kind"),
    requestedBy: text("requested_by").notNull(),
    createdAt: integer("created_at").notNull(),
    startedAt: integer("started_at"),
    updateSentAt: integer("update_sent_at"),
    /**
     * The service version an update was sent against, written with pinnedImage just before it is sent: should the
     * server lose track of the send (a crash, a lost answer), a newer version with the pinned image, or swarm's
     * rollback of it, says the engine took it.
     */
    updateVersion: integer("update_version"),
    finishedAt: integer("finished_at"),
    /** While cooling_down or scheduled: when the wait ends; while awaiting_approval: when the request expires. */
    waitUntil: integer("wait_until"),
    approvedBy: text("approved_by"),
    approvedAt: integer("approved_at"),
    /**
     * Superseded: the newer request that took its place. Should that one deploy nothing (skipped: the service
     * already runs it, say), a move to another tag this one asked for is asked for again (engine/deployer.ts).
     */
    supersededBy: text("superseded_by"),
  },
  (t) => [
    index("deployments_service_id").on(t.service, t.id),
    index("deployments_superseded_by")
      .on(t.supersededBy)
      .where(sql`${t.supersededBy} is not null`),
    index("deployments_status_id").on(t.status, t.id),
    // `?service=&status=` (and the poller's "unfinished deployment of this service"): without it SQLite
    // walks one of the two single-column indexes and filters, ~50 ms a page at a million rows.
    index("deployments_service_status_id").on(t.service, t.status, t.id),
    index("deployments_trigger_id").on(t.trigger, t.id),
    index("deployments_trigger_ref").on(t.triggerId),
    // deployer.min-age: when a digest was first recorded.
    index("deployments_digest").on(t.digest, t.createdAt),
  ],
);

export const deploymentEvents = sqliteTable(
  "deployment_events",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    deploymentId: text("deployment_id")
      .notNull()
      .references(() => deployments.id),
    at: integer("at").notNull(),
    status: text("status").notNull(),
    message: text("message").notNull(),
  },
  (t) => [index("deployment_events_deployment").on(t.deploymentId, t.id)],
);

/**
 * A push that needed no deployment of its own: a later event of a burst (one
 * per manifest, a late retry, the same push announced twice) for a `repo:tag`
 * whose deployment on that service already covers it, because it resolves the
 * tag after this event came or already deployed the digest this event names.
 */
export const coalescedEvents = sqliteTable(
  "coalesced_events",
  {
    triggerId: text("trigger_id")
      .notNull()
      .references(() => triggers.id),
    deploymentId: text("deployment_id")
      .notNull()
      .references(() => deployments.id),
    at: integer("at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.triggerId, t.deploymentId] }), index("coalesced_events_deployment").on(t.deploymentId, t.at)],
);

/** A digest that failed or was rolled back on a service is not deployed there again automatically. */
export const quarantinedDigests = sqliteTable(
  "quarantined_digests",
  {
    service: text("service").notNull(),
    digest: text("digest").notNull(),
    deploymentId: text("deployment_id")
      .notNull()
      .references(() => deployments.id),
    reason: text("reason").notNull(),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.service, t.digest] })],
);

/** A service held after a manual rollback: webhooks and the poller leave it alone until resumed. */
export const serviceHolds = sqliteTable("service_holds", {
  service: text("service").primaryKey(),
  deploymentId: text("deployment_id")
    .notNull()
    .references(() => deployments.id),
  reason: text("reason").notNull(),
  heldBy: text("held_by").notNull(),
  createdAt: integer("created_at").notNull(),
});

/**
 * A push source (CONTRACT §9): a sender that proves itself with its own
 * secret. `secret` is never the plain value for a presented secret (a SHA-256
 * hash), and for an HMAC secret it is sealed with a key derived from the
 * server's key (auth/source-secrets.ts), so a copy of the database alone
 * hands out neither. During a rotation's grace the old one stays in
 * `previous_secret` until `previous_until`.
 */
export const sources = sqliteTable("sources", {
  id: text("id").primaryKey(),
  kind: text("kind").notNull(),
  /** JSON array of repository patterns, read as in webhook tokens. */
  repos: text("repos").notNull(),
  /** JSON array of service names, or null for any service the repositories reach. */
  services: text("services"),
  /** ECR: the header the API destination sends the key in. */
  headerName: text("header_name"),
  secret: text("secret"),
  /** OIDC kinds (gar, oidc): the issuer whose tokens prove the sender, and where its keys are. */
  issuer: text("issuer"),
  jwksUrl: text("jwks_url"),
  audience: text("audience"),
  /** gar: the service account the push subscription's token must name (email_verified too). */
  email: text("email"),
  /** oidc: JSON object of claim name to patterns, every claim to match (domain/claim-rules.ts). */
  claims: text("claims"),
  previousSecret: text("previous_secret"),
  previousUntil: integer("previous_until"),
  createdAt: integer("created_at").notNull(),
  rotatedAt: integer("rotated_at"),
  revokedAt: integer("revoked_at"),
});

/**
 * What the drift watcher last saw of each service (operations/record-drift.ts):
 * its spec version and image, so that a change made while the server was not
 * watching is recorded at the next start.
 */
export const serviceVersions = sqliteTable("service_versions", {
  serviceId: text("service_id").primaryKey(),
  service: text("service").notNull(),
  version: integer("version").notNull(),
  image: text("image").notNull(),
  seenAt: integer("seen_at").notNull(),
});

/**
 * The tag list the poller last read of each repository that services follow
 * with a glob or regex policy (poller/poll-follow.ts): a tag on a later list
 * and not on this one counts as pushed since, also when the server was down
 * in between.
 */
export const followedTagLists = sqliteTable("followed_tag_lists", {
  /** `registry/repository` and the login it was listed with. */
  listKey: text("list_key").primaryKey(),
  /** JSON array of the tags. */
  tags: text("tags").notNull(),
  seenAt: integer("seen_at").notNull(),
});

/**
 * The dashboard's sign-in sessions (http/dashboard/sessions.ts), kept so
 * that a restart (an update of the server itself among them) signs no one
 * out. Neither column gives a session away: the cookie's id is kept as its
 * SHA-256, and the API token behind it is sealed under the server's key.
 */
export const dashboardSessions = sqliteTable(
  "dashboard_sessions",
  {
    idHash: text("id_hash").primaryKey(),
    /** The API token and the session's CSRF token, sealed (auth/sealing.ts) with the id hash as associated data. */
    sealed: text("sealed").notNull(),
    createdAt: integer("created_at").notNull(),
    expiresAt: integer("expires_at").notNull(),
    /** SHA-256 of the signed-in token's jti (or subject and expiry): a token holds a few sessions, and its sign-ins replace only its own. Null before 0013. */
    owner: text("owner"),
  },
  (t) => [index("dashboard_sessions_created").on(t.createdAt), index("dashboard_sessions_owner").on(t.owner, t.createdAt)],
);
