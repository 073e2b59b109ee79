/** The event listeners' per-service queue: in order, one at a time, live reads covering later ones, snapshots covering nothing. */
import { describe, expect, it } from "vitest";
import { createPerServiceQueue } from "../../server/engine/per-service-queue.js";

describe("the per-service queue", () => {
  it("runs one service's work in order, and a live read still waiting covers the live reads asked after it", async () => {
    const queue = createPerServiceQueue();
    const ran: string[] = [];
    let release = () => {};
    queue.enqueue("a", () => new Promise<void>((r) => (release = () => (ran.push("a1"), r()))));
    await new Promise((r) => setImmediate(r)); // a1 is under way: what comes now waits for it
    queue.enqueue("a", () => void ran.push("a2"));
    queue.enqueue("a", () => void ran.push("a3"));
    queue.enqueue("b", () => void ran.push("b1"));
    await new Promise((r) => setImmediate(r));
    expect(ran, "another service's work does not wait").toEqual(["b1"]);
    release();
    await queue.settled();
    expect(ran, "a3 was covered by a2, which had not started").toEqual(["b1", "a1", "a2"]);
    expect(queue.busy()).toBe(false);
  });

  it("neither covers nor drops work on a snapshot: a live read asked after one still runs", async () => {
    const queue = createPerServiceQueue();
    const ran: string[] = [];
    let release = () => {};
    queue.enqueue("a", () => new Promise<void>((r) => (release = () => (ran.push("look"), r()))));
    await new Promise((r) => setImmediate(r));
    queue.enqueue("a", () => void ran.push("snapshot"), { readsLive: false });
    queue.enqueue("a", () => void ran.push("event"));
    queue.enqueue("a", () => void ran.push("event again"));
    expect([...queue.pending()]).toEqual(["a"]);
    release();
    await queue.settled();
    expect(ran).toEqual(["look", "snapshot", "event"]);
  });

  it("hands a failure to its handler, and the service's next work still runs", async () => {
    const failures: string[] = [];
    const queue = createPerServiceQueue((err, id) => failures.push(`${id}: ${(err as Error).message}`));
    const ran: string[] = [];
    queue.enqueue("a", () => Promise.reject(new Error("engine down")));
    await new Promise((r) => setImmediate(r));
    queue.enqueue("a", () => void ran.push("after"));
    await queue.settled();
    expect(failures).toEqual(["a: engine down"]);
    expect(ran).toEqual(["after"]);
  });
});
