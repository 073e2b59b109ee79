/**
 * One watcher for every rollout under way, instead of a polling loop per
 * deployment: each round asks the engine twice, whatever the number of
 * rollouts (`GET /services?filters={"id":[…]}` and `GET /tasks?filters=
 * {"service":[…]}` with every watched service), then sleeps the poll
 * interval on the server's clock. Each rollout's follow (follow-rollout.ts)
 * reads the next round's view of its service as it used to read its own
 * inspect and task list, so it reaches the same verdicts and writes the same
 * timeline entries.
 */
import type { Clock } from "../domain/clock.js";
import type { SwarmPort, SwarmService, SwarmTask } from "./swarm-port.js";

/** What one round saw of one service: undefined when it is gone; `error` when the engine could not be asked. */
export type Observation = { service: SwarmService | undefined; tasks: SwarmTask[] } | { error: unknown };

export interface RolloutWatcher {
  /** The next round's view of the service (the round starts at once when nothing else is watched). */
  observe(serviceId: string): Promise<Observation>;
}

type Waiter = (o: Observation) => void;

export function createRolloutWatcher(opts: { swarm: Pick<SwarmPort, "findServices" | "listTasksOf">; clock: Clock; pollMs: number }): RolloutWatcher {
  let waiting = new Map<string, Waiter[]>();
  let looping = false;

  async function round(): Promise<void> {
    const due = waiting;
    waiting = new Map();
    const ids = [...due.keys()];
    let seen: Map<string, Observation>;
    try {
      const services = await opts.swarm.findServices(ids);
      const live = services.filter((s) => due.has(s.id)).map((s) => s.id);
      const tasks = live.length ? await opts.swarm.listTasksOf(live) : [];
      seen = new Map(ids.map((id) => [id, { service: services.find((s) => s.id === id), tasks: tasks.filter((t) => t.serviceId === id) }]));
    } catch (error) {
      seen = new Map(ids.map((id) => [id, { error }]));
    }
    for (const [id, waiters] of due) for (const deliver of waiters) deliver(seen.get(id)!);
  }

  async function loop(): Promise<void> {
    looping = true;
    try {
      while (waiting.size) {
        await round();
        // The rounds' pace: a follow that asks again right away waits for the next one, so the engine sees one per interval.
        await opts.clock.sleep(opts.pollMs);
      }
    } finally {
      looping = false;
    }
  }

  return {
    observe(serviceId) {
      return new Promise<Observation>((deliver) => {
        waiting.set(serviceId, [...(waiting.get(serviceId) ?? []), deliver]);
        if (!looping) void loop();
      });
    },
  };
}
