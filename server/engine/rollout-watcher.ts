/**
 * One watcher for every rollout under way, instead of a polling loop per
 * deployment: each round asks the engine twice, whatever the number of
 * rollouts (`GET /services?filters={"id":[…]}` and `GET /tasks?filters=
 * {"service":[…]}` with every watched service), then sleeps the poll
 * interval on the server's clock. Each rollout's follow (follow-rollout.ts)
 * reads the next round's view of its service as it used to read its own
 * inspect and task list, so it reaches the same verdicts and writes the same
 * timeline entries.
 *
 * The service index and the drift watcher inspect the service each engine
 * event names through it too (`inspect`): a rollout moves its service's
 * update state several times, and each move is an event both of them hear,
 * so while rollouts run their inspects join the next round's list instead of
 * adding two requests per event. With no rollout under way a round runs as
 * soon as it is asked for (asks made in the same turn share it), and rounds
 * of inspects only do not wait for the interval.
 *
 * An answer is never older than its question: a question joins a round that
 * has not started yet, never one under way.
 */
import type { Clock } from "../domain/clock.js";
import { SwarmNotFoundError, SwarmUnavailableError, type SwarmPort, type SwarmService, type SwarmTask } from "./swarm-port.js";

/** What one round saw of one service: undefined when it is gone; `error` when the engine could not be asked. */
export type Observation = { service: SwarmService | undefined; tasks: SwarmTask[] } | { error: unknown };

export interface RolloutWatcher {
  /** The next round's view of the service and its tasks (the round starts at once when nothing else is watched). */
  observe(serviceId: string): Promise<Observation>;
  /** The service by id as the next round lists it; undefined when it does not exist. Rejects when the engine could not be asked. */
  inspect(serviceId: string): Promise<SwarmService | undefined>;
}

type Waiter = (o: Observation) => void;

/**
 * An error a round's answer came with that is not the engine's own (the adapter could not read the answer: a
 * proxy's page instead of JSON, a spec without its fields) is trouble with the engine for every rollout of the
 * round, as a lost connection is: each follow asks again next round and gives up at its deadline. Thrown as it
 * is, it would end every rollout under way `failed`, whatever their services did.
 */
function asEngineTrouble(error: unknown): unknown {
  if (error instanceof SwarmUnavailableError || error instanceof SwarmNotFoundError) return error;
  return new SwarmUnavailableError(`could not read the Docker engine's answer: ${error instanceof Error ? error.message : String(error)}`);
}

export function createRolloutWatcher(opts: { swarm: Pick<SwarmPort, "findServices" | "listTasksOf">; clock: Clock; pollMs: number }): RolloutWatcher {
  /** Follows waiting for a round: their service and its tasks. */
  let watched = new Map<string, Waiter[]>();
  /** Inspects waiting for a round: their service only. */
  let asked = new Map<string, Waiter[]>();
  let looping = false;

  /**
   * The tasks of the services the round found. The engine refuses a whole task list whose filter names a service it
   * does not know (404), so a service removed since the round listed them is looked for again and left out (as gone):
   * one removal does not tell every other rollout of the round that its service went away. A 404 that no removal
   * explains is the engine's trouble, not the services': the follows hear it as such and ask again next round.
   */
  async function tasksOfLive(live: string[], byId: Map<string, SwarmService>): Promise<SwarmTask[]> {
    for (;;) {
      if (live.length === 0) return [];
      try {
        return await opts.swarm.listTasksOf(live);
      } catch (error) {
        if (!(error instanceof SwarmNotFoundError)) throw error;
        const still = new Set((await opts.swarm.findServices(live)).map((s) => s.id));
        if (live.every((id) => still.has(id))) {
          throw new SwarmUnavailableError(`the engine refused the task list of services it still lists: ${error.message}`);
        }
        // Fewer each time: the loop ends.
        for (const id of live) if (!still.has(id)) byId.delete(id);
        live = live.filter((id) => still.has(id));
      }
    }
  }

  async function round(): Promise<void> {
    const due = watched;
    const inspects = asked;
    watched = new Map();
    asked = new Map();
    const ids = [...new Set([...due.keys(), ...inspects.keys()])];
    /** What the follows see, and what the inspects see: a failed task list fails the follows only. */
    let followed: (id: string) => Observation;
    let inspected: (id: string) => Observation;
    try {
      // Exact ids only: the port leaves out what the engine's prefix filter matches besides.
      const byId = new Map((await opts.swarm.findServices(ids)).map((s) => [s.id, s]));
      inspected = (id) => ({ service: byId.get(id), tasks: [] });
      try {
        const tasks = await tasksOfLive(
          [...due.keys()].filter((id) => byId.has(id)),
          byId,
        );
        followed = (id) => ({ service: byId.get(id), tasks: tasks.filter((t) => t.serviceId === id) });
      } catch (error) {
        const trouble = asEngineTrouble(error);
        followed = () => ({ error: trouble });
      }
    } catch (error) {
      const trouble = asEngineTrouble(error);
      followed = inspected = () => ({ error: trouble });
    }
    for (const [id, list] of due) for (const deliver of list) deliver(followed(id));
    for (const [id, list] of inspects) for (const deliver of list) deliver(inspected(id));
  }

  async function loop(): Promise<void> {
    looping = true;
    try {
      // Questions asked in the same turn (a push's follows, an event's inspects by the index and the drift watcher) share the first round.
      await new Promise<void>((resolve) => setImmediate(resolve));
      while (watched.size || asked.size) {
        const following = watched.size > 0;
        await round();
        // The rounds' pace while rollouts run: a follow that asks again right away waits for the next one, so the engine sees one per interval.
        if (following) await opts.clock.sleep(opts.pollMs);
      }
    } finally {
      looping = false;
    }
  }

  function enqueue(into: Map<string, Waiter[]>, serviceId: string, deliver: Waiter): void {
    into.set(serviceId, [...(into.get(serviceId) ?? []), deliver]);
    if (!looping) void loop();
  }

  return {
    observe(serviceId) {
      return new Promise<Observation>((deliver) => enqueue(watched, serviceId, deliver));
    },
    inspect(serviceId) {
      return new Promise<SwarmService | undefined>((resolve, reject) =>
        enqueue(asked, serviceId, (o) => ("error" in o ? reject(o.error as Error) : resolve(o.service))),
      );
    },
  };
}
