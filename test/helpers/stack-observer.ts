/**
 * What the pipeline test reads back from a deployed stack: the deploy
 * server's own records through its HTTP API, and what the web service's
 * tasks answer on their host ports.
 */
import type Docker from "dockerode";
import { expect } from "vitest";
import { runningTaskPorts } from "./availability-monitor.js";
import { waitFor } from "./docker-env.js";
import { docker } from "./images.js";

export type Deployment = { id: string; service: string; status: string; digest: string | null; trigger: string; message: string | null };
export type DeploymentDetail = Deployment & { events: Array<{ at: string; status: string; message: string }> };

const open = (d: Deployment) => d.status === "queued" || d.status === "running";

export function createStackObserver(opts: { api: Docker; web: string; deployerUrl: string; apiToken: string }) {
  const { api, web } = opts;

  async function apiGet<T>(path: string): Promise<T> {
    const res = await fetch(`${opts.deployerUrl}${path}`, { headers: { authorization: `Bearer ${opts.apiToken}` } });
    const text = await res.text();
    expect(res.status, text).toBe(200);
    return JSON.parse(text) as T;
  }

  const webDeployments = async () => (await apiGet<{ items: Deployment[] }>(`/api/deployments?service=${web}&limit=50`)).items;

  /** What each task swarm means to keep running answers on /version, by host port. */
  async function webVersions(): Promise<Record<number, string>> {
    const answers: Record<number, string> = {};
    for (const port of await runningTaskPorts(api, web, { desiredOnly: true })) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/version`, { signal: AbortSignal.timeout(2000) });
        answers[port] = ((await res.json()) as { version: string }).version;
      } catch (e) {
        answers[port] = `error: ${(e as Error).cause ?? (e as Error).message}`;
      }
    }
    return answers;
  }

  async function taskTable(): Promise<string> {
    const r = await docker(
      ["service", "ps", "--no-trunc", "--format", "{{.Name}} {{.Image}} desired={{.DesiredState}} {{.CurrentState}} {{.Error}}", web],
      { allowFailure: true },
    );
    return r.stdout + r.stderr;
  }

  return {
    apiGet,
    taskTable,

    /** The deploy server's own record of the push of `digest`, found through its history API once it has ended. */
    async outcomeFor(digest: string, what: string): Promise<DeploymentDetail> {
      const found = await waitFor(
        async () => {
          const dep = (await webDeployments()).find((d) => d.digest === digest);
          return dep && !open(dep) ? dep : undefined;
        },
        { timeoutMs: 150_000, intervalMs: 500, what },
      );
      return apiGet<DeploymentDetail>(`/api/deployments/${found.id}`);
    },

    /**
     * The build-1 notifications the registry queued before the server was up
     * arrive once it is; they must have settled (skipped: already running) so
     * the next push is the only thing on the web service's lane.
     */
    async waitForIdleLane(): Promise<void> {
      let pending: Deployment[] = [];
      try {
        await waitFor(
          async () => {
            pending = (await webDeployments()).filter(open);
            return pending.length === 0;
          },
          { timeoutMs: 60_000, intervalMs: 500, what: `no deployment of ${web} queued or running` },
        );
      } catch (e) {
        throw new Error(`${(e as Error).message}: ${JSON.stringify(pending)}`);
      }
    },

    /** Waits until exactly two tasks run and both answer `version` (any one build when omitted), and returns it; a timeout names what they answered. */
    async waitForReplicas(version: string | undefined, timeoutMs: number): Promise<string> {
      let last: Record<number, string> = {};
      try {
        return await waitFor(
          async () => {
            last = await webVersions();
            const v = Object.values(last);
            const build = version ?? v[0];
            return v.length === 2 && v.every((x) => x === build) && build;
          },
          { timeoutMs, intervalMs: 250, what: `two web tasks answering ${version === undefined ? "one build" : `build ${version}`}` },
        );
      } catch (e) {
        throw new Error(`${(e as Error).message}; last answers: ${JSON.stringify(last)}; tasks:\n${await taskTable()}`);
      }
    },

    async serviceImage(name: string): Promise<string> {
      const info = await api.getService(name).inspect();
      return info.Spec.TaskTemplate.ContainerSpec.Image as string;
    },
  };
}
