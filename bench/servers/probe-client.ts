/**
 * A client in a process of its own: plain node, a small heap and nothing
 * else to do, so that the round trips it times carry neither the bench
 * runner's garbage (a seeded million rows) nor tsx's loader thread. Requests
 * go one at a time, each over a kept-alive socket per server.
 */
import { Agent, get } from "node:http";
import { announceReady, answerRpc } from "./child-ipc.js";

export interface ProbeRequest {
  url: string;
  headers: Record<string, string>;
}

const agents = new Map<string, Agent>();

function timeGet(request: ProbeRequest): Promise<number> {
  const origin = new URL(request.url).origin;
  let agent = agents.get(origin);
  if (!agent) agents.set(origin, (agent = new Agent({ keepAlive: true, maxSockets: 1 })));
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = get(request.url, { agent, headers: request.headers }, (res) => {
      res.on("data", () => undefined);
      res.on("end", () =>
        res.statusCode === 200 ? resolve(performance.now() - t0) : reject(new Error(`GET ${request.url} answered ${res.statusCode}`)),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
  });
}

answerRpc({
  /** Round-trip times in ms, in the order given. */
  timeGets: async ({ requests }) => {
    const out: number[] = [];
    for (const r of requests as ProbeRequest[]) out.push(await timeGet(r));
    return out;
  },
});
announceReady(0);
