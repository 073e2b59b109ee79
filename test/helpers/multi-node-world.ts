/**
 * What the multi-node stories share on top of the swarm itself: the builds,
 * loaded into the manager's engine, services created on the manager, and
 * readings of what every node really runs.
 */
import type Docker from "dockerode";
import { onTestFinished } from "vitest";
import { waitFor } from "./docker-env.js";
import type { MultiNodeSwarm, SwarmNodeHandle } from "./multi-node-swarm.js";

export interface TaskSeen {
  id: string;
  node: string;
  image: string;
  state: string;
  desired: string;
  error: string;
}

/** Seconds → the nanoseconds the Engine API wants. */
const s = (n: number) => Math.round(n * 1e9);

/**
 * A service on the multi-node swarm, created through the manager's API:
 * `replicas` tasks, at most `maxPerNode` on one node (so 2 and 1 put a task on
 * each node of a two-node swarm), a stop-first update one task at a time. No
 * health check: the stories are about where tasks run and what they pull,
 * and a one-second probe on every task would starve two cores.
 */
export async function createSpreadService(
  swarm: MultiNodeSwarm,
  opts: {
    name: string;
    image: string;
    replicas?: number;
    maxPerNode?: number;
    labels?: Record<string, string>;
    delaySeconds?: number;
    failureAction?: "pause" | "rollback" | "continue";
    constraints?: string[];
  },
): Promise<void> {
  const api = swarm.manager.api;
  onTestFinished(() => removeSpreadService(swarm, opts.name));
  await api.createService({
    Name: opts.name,
    Labels: opts.labels ?? {},
    TaskTemplate: {
      ContainerSpec: { Image: opts.image, HealthCheck: { Test: ["NONE"] }, StopGracePeriod: s(2) },
      RestartPolicy: { Condition: "any", Delay: s(1) },
      Placement: { MaxReplicas: opts.maxPerNode, Constraints: opts.constraints },
    },
    Mode: { Replicated: { Replicas: opts.replicas ?? 2 } },
    UpdateConfig: {
      Parallelism: 1,
      Delay: s(opts.delaySeconds ?? 0),
      FailureAction: opts.failureAction ?? "pause",
      Monitor: s(2),
      MaxFailureRatio: 0,
      Order: "stop-first",
    },
    RollbackConfig: { Parallelism: 1, Monitor: s(1), Order: "stop-first", FailureAction: "pause" },
  } as Docker.CreateServiceOptions);
  await waitFor(
    async () => {
      const running = (await tasksOf(swarm, opts.name)).filter((t) => t.desired === "running" && t.state === "running");
      return running.length === (opts.replicas ?? 2);
    },
    { timeoutMs: 90_000, intervalMs: 500, what: `${opts.name}: every replica running` },
  );
}

/** Removes the service and waits until no node has a container of it. */
export async function removeSpreadService(swarm: MultiNodeSwarm, name: string): Promise<void> {
  try {
    await swarm.manager.api.getService(name).remove();
  } catch {
    return;
  }
  await waitFor(
    async () => {
      for (const node of swarm.nodes) {
        const left = await node.api
          .listContainers({ all: true, filters: { label: [`com.docker.swarm.service.name=${name}`] } })
          .catch(() => [] as unknown[]);
        if (left.length > 0) return false;
      }
      return true;
    },
    { timeoutMs: 30_000, intervalMs: 500, what: `${name}'s containers gone` },
  ).catch(() => undefined);
}

/** The service's tasks as the manager lists them, with the node's hostname. */
export async function tasksOf(swarm: MultiNodeSwarm, service: string): Promise<TaskSeen[]> {
  const api = swarm.manager.api;
  const tasks = (await api.listTasks({ filters: { service: [service] } })) as Array<{
    ID: string;
    NodeID?: string;
    DesiredState: string;
    Status: { State: string; Err?: string };
    Spec: { ContainerSpec: { Image: string } };
  }>;
  const byId = new Map(swarm.nodes.map((n) => [n.nodeId, n.hostname]));
  return tasks.map((t) => ({
    id: t.ID,
    node: (t.NodeID && byId.get(t.NodeID)) ?? t.NodeID ?? "-",
    image: t.Spec.ContainerSpec.Image,
    state: t.Status.State,
    desired: t.DesiredState,
    error: t.Status.Err ?? "",
  }));
}

export function taskTable(tasks: TaskSeen[]): string {
  return tasks.map((t) => `${t.id.slice(0, 12)} ${t.node} ${t.state}/${t.desired} ${t.image} ${t.error}`).join("\n");
}

/**
 * What a node's own engine runs for the service: for each running container,
 * the image reference in its config and the repository digests of the image
 * it was really created from (what the node pulled).
 */
export async function runningOn(node: SwarmNodeHandle, service: string): Promise<Array<{ image: string; repoDigests: string[] }>> {
  const containers = await node.api.listContainers({ filters: { label: [`com.docker.swarm.service.name=${service}`], status: ["running"] } });
  const out: Array<{ image: string; repoDigests: string[] }> = [];
  for (const c of containers) {
    const info = (await node.api.getContainer(c.Id).inspect()) as { Image: string; Config: { Image: string } };
    const image = (await node.api.getImage(info.Image).inspect()) as { RepoDigests?: string[] };
    out.push({ image: info.Config.Image, repoDigests: image.RepoDigests ?? [] });
  }
  return out;
}
