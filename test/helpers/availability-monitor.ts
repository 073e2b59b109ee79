import http from "node:http";
import type Docker from "dockerode";

/**
 * Watches a swarm service the way a client without a load balancer would:
 * every `intervalMs` it sends one GET to the host port of every task that is
 * running, on 127.0.0.1, and records which answered 200. Host-mode publishing
 * gives each task its own port; the list is refreshed in the background so a
 * slow Engine API call never delays a round. A request counts when its 200
 * arrives within requestTimeoutMs (5 s): a host busy starting containers can
 * delay answers by seconds, while a request an update drops is refused or
 * reset at once; the report keeps the slowest 200 so delays stay visible.
 */

export interface Answer {
  port: number;
  /** HTTP status, or the error code of a refused/reset/timed-out request. */
  result: number | string;
  /** From sending the request to the end of the answer (or the error). */
  ms: number;
  version?: string;
  hostname?: string;
}

export interface Round {
  at: number;
  answers: Answer[];
}

export interface AvailabilityReport {
  rounds: Round[];
  /** Rounds in which no task answered 200. */
  failed: Round[];
  durationMs: number;
  /** Longest time between two rounds that each had a 200 (≈ intervalMs when nothing was dropped). */
  maxGapMs: number;
  /** Slowest 200: a busy host delays answers, which is not the same as dropping them. */
  maxLatencyMs: number;
  portsSeen: number[];
  versionsSeen: string[];
  hostnamesSeen: string[];
}

/**
 * IPv4 host ports of the service's running tasks, read from each task's
 * container: the task's PortStatus cannot be used, because this engine gives
 * a dynamic binding one port for IPv4 and another for IPv6, lists both
 * without the family, and one task's IPv6 port can be another task's IPv4
 * one. By default tasks swarm is stopping count too (a client cannot know);
 * `desiredOnly` keeps the ones swarm means to keep.
 */
export async function runningTaskPorts(docker: Docker, service: string, opts: { desiredOnly?: boolean } = {}): Promise<number[]> {
  const tasks = (await docker.listTasks({ filters: { service: [service] } })) as Array<{
    DesiredState?: string;
    Status?: { State?: string; ContainerStatus?: { ContainerID?: string } };
  }>;
  const containers = tasks
    .filter((t) => t.Status?.State === "running" && (!opts.desiredOnly || t.DesiredState === "running"))
    .map((t) => t.Status?.ContainerStatus?.ContainerID)
    .filter((id): id is string => Boolean(id));
  const ports = new Set<number>();
  await Promise.all(
    containers.map(async (id) => {
      try {
        const info = await docker.getContainer(id).inspect();
        for (const bindings of Object.values(info.NetworkSettings.Ports ?? {})) {
          for (const b of bindings ?? []) if (b.HostIp === "0.0.0.0" || b.HostIp === "127.0.0.1") ports.add(Number(b.HostPort));
        }
      } catch {
        // removed between the task list and the inspect: no longer running
      }
    }),
  );
  return [...ports].sort((a, b) => a - b);
}

/** One GET on a fresh connection: a pooled keep-alive socket would hide a server that stopped accepting. */
function probe(port: number, path: string, timeoutMs: number): Promise<Answer> {
  const sent = performance.now();
  const ms = () => Math.round(performance.now() - sent);
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path, agent: false, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => {
        let parsed: { version?: string; hostname?: string } = {};
        try {
          parsed = JSON.parse(body) as typeof parsed;
        } catch {
          // not JSON: only the status counts
        }
        resolve({ port, result: res.statusCode ?? 0, ms: ms(), version: parsed.version, hostname: parsed.hostname });
      });
      res.on("error", (e: NodeJS.ErrnoException) => resolve({ port, result: e.code ?? e.message, ms: ms() }));
    });
    req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "TIMEOUT" })));
    req.on("error", (e: NodeJS.ErrnoException) => resolve({ port, result: e.code ?? e.message, ms: ms() }));
  });
}

/** Starts once the first port list is known, so no round runs against an empty list. */
export async function startAvailabilityMonitor(opts: {
  docker: Docker;
  service: string;
  path?: string;
  intervalMs?: number;
  refreshMs?: number;
  requestTimeoutMs?: number;
}) {
  const intervalMs = opts.intervalMs ?? 50;
  const path = opts.path ?? "/version";
  const rounds: Round[] = [];
  const pending = new Set<Promise<void>>();
  let stopped = false;
  let stopping: Promise<AvailabilityReport> | undefined;
  const started = Date.now();

  let ports = await runningTaskPorts(opts.docker, opts.service);
  const refresh = async () => {
    while (!stopped) {
      await new Promise((r) => setTimeout(r, opts.refreshMs ?? 150));
      try {
        ports = await runningTaskPorts(opts.docker, opts.service);
      } catch {
        // keep the last known ports; a failed Engine API call says nothing about the service
      }
    }
  };
  const refreshing = refresh();

  const timer = setInterval(() => {
    const at = Date.now();
    const current = ports;
    const round = Promise.all(current.map((p) => probe(p, path, opts.requestTimeoutMs ?? 5000))).then((answers) => {
      rounds.push({ at, answers });
    });
    pending.add(round);
    void round.finally(() => pending.delete(round));
  }, intervalMs);

  return {
    /** Rounds recorded so far, in the order they finished. */
    rounds: () => rounds,
    /** Idempotent: the test stops it to read the report, clean-up stops it again if the test failed first. */
    stop(): Promise<AvailabilityReport> {
      stopping ??= (async () => {
        stopped = true;
        clearInterval(timer);
        await Promise.all(pending);
        await refreshing;
        return summarize(rounds, Date.now() - started);
      })();
      return stopping;
    },
  };
}

function summarize(unsorted: Round[], durationMs: number): AvailabilityReport {
  const rounds = [...unsorted].sort((a, b) => a.at - b.at);
  const ok = (r: Round) => r.answers.some((a) => a.result === 200);
  let maxGapMs = 0;
  let lastOk: number | undefined;
  for (const r of rounds) {
    if (!ok(r)) continue;
    if (lastOk !== undefined) maxGapMs = Math.max(maxGapMs, r.at - lastOk);
    lastOk = r.at;
  }
  const all = rounds.flatMap((r) => r.answers);
  const answered = all.filter((a) => a.result === 200);
  const distinct = (xs: Array<string | undefined>) => [...new Set(xs.filter((x): x is string => x !== undefined))].sort();
  return {
    rounds,
    failed: rounds.filter((r) => !ok(r)),
    durationMs,
    maxGapMs,
    maxLatencyMs: Math.max(0, ...answered.map((a) => a.ms)),
    portsSeen: [...new Set(all.map((a) => a.port))].sort((a, b) => a - b),
    versionsSeen: distinct(answered.map((a) => a.version)),
    hostnamesSeen: distinct(answered.map((a) => a.hostname)),
  };
}
