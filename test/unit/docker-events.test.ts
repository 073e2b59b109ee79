import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it, onTestFinished } from "vitest";
import { createDockerClient } from "../../server/engine/docker-client.js";
import { parseServiceEvent } from "../../server/engine/docker-events.js";
import { createDockerodeSwarm } from "../../server/engine/dockerode-swarm.js";
import type { ServiceEvent } from "../../server/engine/swarm-port.js";
import { FakeClock } from "../helpers/fake-clock.js";

/** A stand-in Engine API whose /events answers come from `answer`, one call per connection. */
async function engine(answer: (n: number, query: URLSearchParams, res: ServerResponse) => void) {
  const queries: URLSearchParams[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://engine");
    if (!url.pathname.endsWith("/events")) return void res.writeHead(404).end();
    queries.push(url.searchParams);
    res.writeHead(200, { "content-type": "application/json" });
    answer(queries.length, url.searchParams, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const { port } = server.address() as AddressInfo;
  return {
    queries,
    swarm: createDockerodeSwarm(createDockerClient(`tcp://127.0.0.1:${port}`), {
      events: { backoffFirstMs: 5, backoffMaxMs: 20, clock: new FakeClock(undefined, { autoAdvanceUpToMs: 20 }) },
    }),
  };
}

const line = (o: unknown) => `${JSON.stringify(o)}\n`;
const serviceEvent = (action: string, id: string, time: number) => ({
  Type: "service",
  Action: action,
  Actor: { ID: id, Attributes: { name: "web" } },
  scope: "swarm",
  time,
  timeNano: time * 1e9 + 5e8,
});

describe("the engine's service event stream", () => {
  it("reads service events split across chunks, skips the rest, and reconnects with since after a drop", async () => {
    const e = await engine((n, _query, res) => {
      if (n === 1) {
        const text =
          line(serviceEvent("update", "svc1", 1_700_000_000)) + "not json\n" + line({ Type: "container", Action: "start", Actor: { ID: "c" } });
        res.write(text.slice(0, 20));
        setTimeout(() => res.end(text.slice(20)), 10);
      } else res.write(line(serviceEvent("remove", "svc1", 1_700_000_002)));
    });
    const seen: ServiceEvent[] = [];
    const drops: Array<[string, number]> = [];
    let connections = 0;
    const abort = new AbortController();
    const watching = e.swarm.watchServiceEvents(
      { onEvent: (ev) => seen.push(ev), onConnected: () => connections++, onDisconnected: (reason, ms) => drops.push([reason, ms]) },
      abort.signal,
    );
    for (let i = 0; i < 200 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(seen).toEqual([
      { action: "update", serviceId: "svc1", name: "web", at: 1_700_000_000_500 },
      { action: "remove", serviceId: "svc1", name: "web", at: 1_700_000_002_500 },
    ]);
    expect(connections).toBe(2);
    expect(drops).toEqual([["the engine ended the event stream", 5]]);
    expect(JSON.parse(e.queries[0]!.get("filters")!)).toEqual({ type: ["service"] });
    expect(e.queries[0]!.get("since")).toBeNull();
    expect(e.queries[1]!.get("since"), "the second of the last event seen").toBe("1700000000");
    abort.abort();
    await expect(watching).resolves.toBeUndefined();
  });

  it("keeps trying an engine that refuses, backing off on the clock from 250 ms up to 10 s, and stops when aborted", async () => {
    const clock = new FakeClock();
    const swarm = createDockerodeSwarm(createDockerClient("unix:///nonexistent/docker.sock"), { events: { clock } });
    const waits: number[] = [];
    const abort = new AbortController();
    const watching = swarm.watchServiceEvents({ onEvent: () => {}, onDisconnected: (_reason, ms) => waits.push(ms) }, abort.signal);
    for (let n = 1; n <= 8; n++) {
      await clock.sleepCount(n);
      expect(waits, "no new attempt before the wait is over").toHaveLength(n);
      clock.advance(clock.sleeps.at(-1)!);
    }
    await clock.sleepCount(9);
    abort.abort();
    await expect(watching).resolves.toBeUndefined();
    expect(waits).toEqual([250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
    expect(clock.sleeps).toEqual(waits);
  });

  it("parses only service events with an actor", () => {
    expect(parseServiceEvent(JSON.stringify({ Type: "service", Action: "update", Actor: { ID: "x" }, time: 2 }))).toEqual({
      action: "update",
      serviceId: "x",
      at: 2000,
    });
    expect(parseServiceEvent(JSON.stringify({ Type: "service", Action: "exec", Actor: { ID: "x" } }))).toBeUndefined();
    expect(parseServiceEvent(JSON.stringify({ Type: "service", Action: "update", Actor: {} }))).toBeUndefined();
    expect(parseServiceEvent("[1,2]")).toBeUndefined();
    expect(parseServiceEvent("null")).toBeUndefined();
  });
});
