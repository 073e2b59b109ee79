import { eq } from "drizzle-orm";
import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { describe, expect, it } from "vitest";
import { createIdGenerator } from "../../server/domain/ids.js";
import { createDeploymentStore } from "../../server/store/deployment-store.js";
import { selectList, writtenRow } from "../../server/store/raw-rows.js";
import { deployments, triggers } from "../../server/store/schema.js";
import { testDatabase } from "../helpers/test-database.js";

function store() {
  const database = testDatabase();
  let t = 1_000;
  return { database, store: createDeploymentStore(database.db, { now: () => t++, newId: createIdGenerator(() => t) }) };
}

describe("rows read and written on the raw connection", () => {
  it("are the rows drizzle reads, every column, with nulls where nothing was written", async () => {
    const { database, store: s } = store();
    const bare = await s.recordTriggerGrouped({ kind: "registry", eventKey: "registry:a", imageKey: "r/x:1", requestedBy: "ci" }, []);
    const full = s.recordTrigger(
      {
        kind: "ci",
        eventKey: "ci:b",
        imageKey: "r/x:2",
        digestHint: `sha256:${"a".repeat(64)}`,
        requestedBy: "ci",
        callbackUrl: "https://ci.example/cb",
        unmatched: true,
        allowedServices: '["web"]',
      },
      [
        {
          service: "web",
          serviceId: "svc1",
          image: "r/x:2",
          imageKey: "r/x:2",
          digestHint: `sha256:${"a".repeat(64)}`,
          previousImage: "r/x:1",
          trigger: "ci",
          requestedBy: "ci",
          message: "queued",
        },
      ],
    );
    if (bare.duplicate || full.duplicate) throw new Error("not a duplicate");

    for (const recorded of [bare.trigger, full.trigger]) {
      const [drizzleRow] = database.db.select().from(triggers).where(eq(triggers.id, recorded.id)).all();
      expect(recorded).toStrictEqual(drizzleRow); // the row the insert returns, built without reading it back
      expect(s.findTriggerByKey(recorded.kind, recorded.eventKey)).toStrictEqual(drizzleRow);
    }
    const [written] = full.deployments;
    const [drizzleDeployment] = database.db.select().from(deployments).where(eq(deployments.id, written!.id)).all();
    expect(s.findDeployment(written!.id)).toStrictEqual(drizzleDeployment);
    expect(Object.keys(drizzleDeployment!).length).toBeGreaterThan(20);
    // What coalescing reads of it: those columns only, the same values.
    const { id, status, imageKey, digest, trigger } = drizzleDeployment!;
    expect(s.findCoalesceView(written!.id)).toStrictEqual({ id, status, imageKey, digest, trigger });
    // Every column is there under drizzle's name; the unset ones are null, as drizzle reads them.
    expect(drizzleDeployment).toMatchObject({ digest: null, pinnedImage: null, finishedAt: null, serviceId: "svc1", previousImage: "r/x:1" });
  });

  it("refuse a table whose columns drizzle would convert or fill in, since raw rows would differ from its rows", () => {
    const stamped = sqliteTable("stamped", { id: text("id").primaryKey(), at: integer("at", { mode: "timestamp" }) });
    const flagged = sqliteTable("flagged", { id: text("id").primaryKey(), on: integer("on", { mode: "boolean" }) });
    const defaulted = sqliteTable("defaulted", { id: text("id").primaryKey(), n: integer("n").default(0) });
    expect(() => selectList(stamped)).toThrow(/stamped\.at is SQLiteTimestamp/);
    expect(() => selectList(flagged)).toThrow(/flagged\.on is SQLiteBoolean/);
    expect(() => writtenRow(defaulted)).toThrow(/defaulted\.n has a default/);
    expect(selectList(triggers)).toContain('"event_key" as "eventKey"');
    expect(selectList(triggers, ["id", "eventKey"])).toBe('"id", "event_key" as "eventKey"');
    expect(() => selectList(triggers, ["id", "eventkey"])).toThrow(/triggers has no column eventkey/);
  });
});
