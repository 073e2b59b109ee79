import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createIdGenerator } from "../../server/domain/ids.js";
import { createDeploymentStore, type NewDeployment, type NewTrigger } from "../../server/store/deployment-store.js";
import { createGroupCommit } from "../../server/store/group-commit.js";
import { tempDir } from "../helpers/temp-dir.js";
import { testDatabase } from "../helpers/test-database.js";

/** A real SQLite file built by the migrations, and a second connection that sees only what was committed. */
function database() {
  const path = join(tempDir("group-commit-"), "deployer.db");
  const writer = testDatabase(path);
  const reader = testDatabase(path);
  writer.sqlite.exec("create table scratch (v text primary key)");
  const committed = (table: string) => (reader.sqlite.prepare(`select count(*) as n from ${table}`).get() as { n: number }).n;
  return { writer, committed };
}

const trigger = (eventKey: string): NewTrigger => ({ kind: "registry", eventKey, imageKey: "127.0.0.1:5000/acme/web:v1", requestedBy: "ci" });
const deployment = (service: string): NewDeployment => ({
  service,
  serviceId: `id-${service}`,
  image: "127.0.0.1:5000/acme/web:v1",
  imageKey: "127.0.0.1:5000/acme/web:v1",
  previousImage: "127.0.0.1:5000/acme/web:v1",
  trigger: "registry",
  requestedBy: "ci",
  message: "queued",
});

describe("group commit", () => {
  it("commits the writes asked for in one turn together, and settles each only after the commit", async () => {
    const { writer, committed } = database();
    const batches: number[] = [];
    let seenUncommitted = -1;
    const group = createGroupCommit((batch) => writer.sqlite.transaction(batch)(), { onFlush: (n) => batches.push(n) });
    const insert = writer.sqlite.prepare("insert into scratch (v) values (?)");
    const writes = Array.from({ length: 20 }, (_, i) =>
      group(() => {
        insert.run(`svc-${i}`);
        if (i === 19) seenUncommitted = committed("scratch");
        return i;
      }),
    );
    expect(await Promise.all(writes)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(seenUncommitted).toBe(0); // the other connection saw nothing until the single commit
    expect(batches).toEqual([20]);
    expect(committed("scratch")).toBe(20);
  });

  it("rolls back only the write that throws; the rest of its batch commits", async () => {
    const { writer, committed } = database();
    const store = createDeploymentStore(writer.db, { now: () => 1_000, newId: createIdGenerator(() => 1_000) });
    const results = await Promise.allSettled([
      store.recordTriggerGrouped(trigger("evt-1"), [deployment("web")]),
      store.recordTriggerGrouped(trigger("evt-2"), [deployment("api"), { ...deployment("broken"), service: null as unknown as string }]),
      store.recordTriggerGrouped(trigger("evt-3"), [deployment("worker")]),
    ]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/NOT NULL/);
    // evt-2's trigger and its first deployment went with it.
    expect(committed("triggers")).toBe(2);
    expect(writer.sqlite.prepare("select service from deployments order by service").all()).toEqual([{ service: "web" }, { service: "worker" }]);
    expect(committed("deployment_events")).toBe(2);
  });

  it("records one trigger for an event key sent twice in the same batch; the second is a duplicate", async () => {
    const { writer, committed } = database();
    const store = createDeploymentStore(writer.db, { now: () => 1_000, newId: createIdGenerator(() => 1_000) });
    const [first, second] = await Promise.all([
      store.recordTriggerGrouped(trigger("evt-same"), [deployment("web")]),
      store.recordTriggerGrouped(trigger("evt-same"), [deployment("web")]),
    ]);
    expect(first!.duplicate).toBe(false);
    expect(second!.duplicate).toBe(true);
    expect(second!.trigger.id).toBe(first!.trigger.id);
    expect(committed("deployments")).toBe(1);
  });

  it("rejects every write of a batch whose commit fails, and keeps accepting writes after", async () => {
    const { writer, committed } = database();
    let failNext = true;
    const group = createGroupCommit((batch) => {
      writer.sqlite.transaction(() => {
        batch();
        if (failNext) throw new Error("disk I/O error");
      })();
    });
    const insert = writer.sqlite.prepare("insert into scratch (v) values (?)");
    const failed = await Promise.allSettled([group(() => insert.run("a")), group(() => insert.run("b"))]);
    expect(failed.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect(committed("scratch")).toBe(0);
    failNext = false;
    await group(() => insert.run("c"));
    expect(committed("scratch")).toBe(1);
  });

  it("rejects the whole batch when a write's error rolled back the transaction itself, and runs no write after it on its own", async () => {
    const { writer, committed } = database();
    const store = createDeploymentStore(writer.db, { now: () => 1_000, newId: createIdGenerator(() => 1_000) });
    // SQLite ends the whole transaction on some errors (SQLITE_FULL, SQLITE_IOERR): a raw ROLLBACK stands in for it.
    const wholeRollback = () => {
      writer.sqlite.exec("ROLLBACK");
      throw Object.assign(new Error("database or disk is full"), { code: "SQLITE_FULL" });
    };
    const results = await Promise.allSettled([
      store.recordTriggerGrouped(trigger("evt-1"), [deployment("web")]),
      store.recordTriggerGrouped(trigger("evt-2"), [], { alongside: wholeRollback }),
      store.recordTriggerGrouped(trigger("evt-3"), [deployment("worker")]),
    ]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected", "rejected"]);
    for (const r of results) expect((r as PromiseRejectedResult).reason).toMatchObject({ code: "SQLITE_FULL" });
    expect(committed("triggers"), "evt-3 ran in no transaction of its own").toBe(0);
    expect(committed("deployments")).toBe(0);
    // The next batch writes as usual.
    await store.recordTriggerGrouped(trigger("evt-4"), [deployment("web")]);
    expect(committed("triggers")).toBe(1);
  });

  it("splits a backlog larger than the batch limit into several commits", async () => {
    const { writer } = database();
    const batches: number[] = [];
    const group = createGroupCommit((batch) => writer.sqlite.transaction(batch)(), { maxBatch: 8, onFlush: (n) => batches.push(n) });
    await Promise.all(Array.from({ length: 20 }, (_, i) => group(() => i)));
    expect(batches).toEqual([8, 8, 4]);
  });

  it("waits while each turn of the event loop brings more writes, up to maxTurns, and a lone write only two turns", async () => {
    const { writer } = database();
    const batches: number[] = [];
    const group = createGroupCommit((batch) => writer.sqlite.transaction(batch)(), { maxTurns: 3, onFlush: (n) => batches.push(n) });
    const turn = () => new Promise((r) => setImmediate(r));

    let done = false;
    const lone = group(() => 1).then(() => (done = true));
    await turn();
    expect(done, "a turn with a write in it: it waits one more").toBe(false);
    await turn();
    await turn();
    expect(done, "the next turn brought none: written").toBe(true);
    await lone;

    // A write in each of five turns: the first's batch waits three turns more (maxTurns 3) and takes theirs; the fifth starts the next.
    const writes: Array<Promise<number>> = [];
    for (let i = 0; i < 5; i++) {
      writes.push(group(() => i));
      await turn();
    }
    await Promise.all(writes);
    expect(batches).toEqual([1, 4, 1]);
  });
});
