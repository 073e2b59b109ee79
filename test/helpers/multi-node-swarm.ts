/**
 * A swarm of its own with more than one node, on this one machine: extra
 * `dockerd`s, each in its own network namespace (and UTS namespace, so each
 * node has its own hostname), joined over a private bridge, with a
 * `docker-registry` on the bridge's address that every node pulls from.
 *
 * The host's own engine and its single-node swarm are left alone: the nodes
 * have their own data roots, exec roots (their own containerd) and sockets,
 * and every name this creates (namespaces, bridge, veths, iptables rule,
 * folder) carries the prefix `dpms` and a random id, so a run can find and
 * remove what a killed run left behind without touching anything else.
 * Traffic goes only to the namespaces' addresses and 127.0.0.1.
 *
 * Recipe notes: `ip netns exec` remounts /sys, after which dockerd fails
 * ("Devices cgroup isn't mounted"), so dockerd is started through
 * `nsenter --net=…`; Docker's FORWARD policy may be DROP, so traffic within
 * the bridge is accepted by one rule, removed at the end.
 */
import { randomBytes } from "node:crypto";
import { openSync } from "node:fs";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import Docker from "dockerode";
import { freePort, startRegistry, waitFor, type RegistryOptions, type TestRegistry } from "./docker-env.js";
import { docker as hostDocker, runCommand, type RunResult } from "./images.js";

const PREFIX = "dpms";
const STATE_ROOT = "/tmp";

export interface SwarmNodeHandle {
  /** "manager", "worker1", … */
  role: "manager" | "worker";
  /** The node's hostname, as swarm shows it (dpms-<id>-m, dpms-<id>-w1). */
  hostname: string;
  netns: string;
  ip: string;
  socket: string;
  dir: string;
  /** Swarm's node id, once joined. */
  nodeId: string;
  api: Docker;
}

export interface MultiNodeSwarm {
  id: string;
  /** The host's address on the bridge: the registry listens there. */
  bridgeIp: string;
  manager: SwarmNodeHandle;
  workers: SwarmNodeHandle[];
  nodes: SwarmNodeHandle[];
  /** The registry every node reaches, "<bridge ip>:<port>". */
  registry: TestRegistry;
  /** `docker -H <node> …` */
  docker(
    node: SwarmNodeHandle,
    args: readonly string[],
    opts?: { allowFailure?: boolean; timeoutMs?: number; env?: Record<string, string>; cwd?: string },
  ): Promise<RunResult>;
  /** Moves images built by the host's engine into a node's (the manager's unless named): `docker save`, `docker load`. */
  loadImages(tags: string[], node?: SwarmNodeHandle): Promise<void>;
  /** Tags a loaded image as `target` on the manager and pushes it from there; returns the pushed digest. */
  push(localTag: string, target: string): Promise<string>;
  /** Starts another registry on the bridge address (a login-protected one, say). */
  startRegistry(opts?: Omit<RegistryOptions, "address">): Promise<TestRegistry>;
  /** SIGKILLs a node's dockerd (its containerd and containers live on, as on a machine whose engine crashed). */
  killEngine(node: SwarmNodeHandle): Promise<void>;
  /** Starts a node's dockerd again with its data root: it rejoins the swarm by itself. */
  restartEngine(node: SwarmNodeHandle): Promise<void>;
  /** What the manager says of a node: Status.State and Spec.Availability. */
  nodeState(node: SwarmNodeHandle): Promise<{ state: string; availability: string }>;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function ip(args: readonly string[], allowFailure = false) {
  return runCommand("ip", args, { allowFailure, timeoutMs: 15_000 });
}

function iptables(args: readonly string[], allowFailure = false) {
  return runCommand("iptables", ["-w", ...args], { allowFailure, timeoutMs: 15_000 });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Kills every process in a network namespace (its dockerd, containerd, shims, containers). */
async function killNamespace(netns: string): Promise<void> {
  for (let round = 0; round < 20; round++) {
    const { stdout } = await ip(["netns", "pids", netns], true);
    const pids = stdout
      .split("\n")
      .map((s) => Number(s.trim()))
      .filter((n) => n > 0);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, round < 3 ? "SIGTERM" : "SIGKILL");
      } catch {
        // already gone
      }
    }
    await sleep(round < 3 ? 1000 : 250);
  }
}

/** Unmounts everything under `dir` (overlay layers, netns files, shm), deepest first. */
async function unmountUnder(dir: string): Promise<void> {
  const info = await readFile("/proc/self/mountinfo", "utf8");
  const points = info
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((p): p is string => !!p && (p === dir || p.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const p of points) await runCommand("umount", ["-l", p], { allowFailure: true });
}

async function removeRun(id: string): Promise<void> {
  const dir = path.join(STATE_ROOT, `${PREFIX}-${id}`);
  const { stdout: spaces } = await ip(["netns", "list"], true);
  for (const line of spaces.split("\n")) {
    const name = line.split(" ")[0] ?? "";
    if (!name.startsWith(`${PREFIX}-${id}-`)) continue;
    await killNamespace(name);
    await ip(["netns", "delete", name], true);
  }
  // The registry and other host-side processes of the run.
  try {
    for (const pid of JSON.parse(await readFile(path.join(dir, "host-pids.json"), "utf8")) as number[]) {
      if (alive(pid)) process.kill(pid, "SIGKILL");
    }
  } catch {
    // none recorded
  }
  const bridge = `${PREFIX}${id}`;
  const { stdout: rules } = await iptables(["-S", "FORWARD"], true);
  for (const rule of rules.split("\n")) {
    if (!rule.startsWith("-A FORWARD") || !rule.includes(`-i ${bridge} `)) continue;
    await iptables(["-D", ...rule.slice(3).split(" ").filter(Boolean)], true);
  }
  await ip(["link", "delete", bridge], true);
  await unmountUnder(dir);
  await rm(dir, { recursive: true, force: true });
}

/**
 * Removes what earlier runs left (a killed run's namespaces, bridge, rule,
 * folder), only those whose owning process is gone; names without this
 * helper's prefix are never touched.
 */
export async function removeStaleRuns(): Promise<string[]> {
  const ids = new Set<string>();
  const { stdout: spaces } = await ip(["netns", "list"], true);
  for (const line of spaces.split("\n")) {
    const m = new RegExp(`^${PREFIX}-([0-9a-f]{6})-`).exec(line);
    if (m?.[1]) ids.add(m[1]);
  }
  const { stdout: links } = await ip(["-o", "link", "show", "type", "bridge"], true);
  for (const line of links.split("\n")) {
    const m = new RegExp(`^\\d+: ${PREFIX}([0-9a-f]{6})[:@]`).exec(line);
    if (m?.[1]) ids.add(m[1]);
  }
  for (const entry of await readdir(STATE_ROOT).catch(() => [] as string[])) {
    const m = new RegExp(`^${PREFIX}-([0-9a-f]{6})$`).exec(entry);
    if (m?.[1]) ids.add(m[1]);
  }
  const removed: string[] = [];
  for (const id of ids) {
    const owner = Number(await readFile(path.join(STATE_ROOT, `${PREFIX}-${id}`, "owner.pid"), "utf8").catch(() => "0"));
    if (owner > 0 && alive(owner)) continue;
    await removeRun(id);
    removed.push(id);
  }
  return removed;
}

/** A /24 in 10.213.0.0/16 that no interface of this machine uses. */
async function pickSubnet(): Promise<string> {
  const { stdout } = await ip(["-4", "-o", "addr", "show"]);
  for (let i = 0; i < 50; i++) {
    const third = randomBytes(1)[0]!;
    const net = `10.213.${third}`;
    if (!stdout.includes(` ${net}.`)) return net;
  }
  throw new Error("no free 10.213.x.0/24 subnet found");
}

/** Only the handful of variables dockerd needs; nothing of the test's own environment. */
function engineEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", HOME: process.env.HOME ?? "/root" };
}

async function startEngine(node: SwarmNodeHandle, insecureRegistry: string): Promise<void> {
  await mkdir(node.dir, { recursive: true });
  const args = [
    `--net=/var/run/netns/${node.netns}`,
    "--",
    "unshare",
    "--uts",
    "--",
    "sh",
    "-c",
    // The hostname and paths are ours (prefix, hex id, fixed words): nothing here comes from outside.
    `hostname ${node.hostname} && exec dockerd --data-root ${node.dir}/data --exec-root ${node.dir}/exec --pidfile ${node.dir}/dockerd.pid ` +
      `-H unix://${node.socket} --bridge none --iptables=false --ip-masq=false --insecure-registry ${insecureRegistry} --log-level warn`,
  ];
  const log = openSync(path.join(node.dir, "dockerd.log"), "a");
  const child = spawn("nsenter", args, { env: engineEnv(), stdio: ["ignore", log, log], detached: true });
  child.unref();
  await waitFor(async () => (await node.api.ping()) && true, { timeoutMs: 60_000, intervalMs: 200, what: `dockerd of ${node.hostname}` }).catch(
    async (err: unknown) => {
      const tail = (await readFile(path.join(node.dir, "dockerd.log"), "utf8").catch(() => "")).split("\n").slice(-20).join("\n");
      throw new Error(`${(err as Error).message}\n${tail}`);
    },
  );
}

/**
 * Starts a manager and `workers` workers (1 or 2) and the registry on the
 * bridge. `heartbeat` is the dispatcher's heartbeat period: how soon the
 * manager notices a node that is gone.
 */
export async function startMultiNodeSwarm(
  opts: {
    workers?: 1 | 2;
    heartbeat?: string;
    /** The main registry's options (notifications), given its host ("<bridge ip>:<port>") and the manager's address. */
    registry?: (host: string, managerIp: string) => Promise<Omit<RegistryOptions, "address" | "port">>;
  } = {},
): Promise<MultiNodeSwarm> {
  await removeStaleRuns();
  const id = randomBytes(3).toString("hex");
  const dir = path.join(STATE_ROOT, `${PREFIX}-${id}`);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, "owner.pid"), String(process.pid));
  const hostPids: number[] = [];
  const recordHostPid = async (pid: number | undefined) => {
    if (pid) hostPids.push(pid);
    await writeFile(path.join(dir, "host-pids.json"), JSON.stringify(hostPids));
  };

  let closed: Promise<void> | undefined;
  const registries: TestRegistry[] = [];
  const close = () => {
    closed ??= (async () => {
      process.off("exit", onExit);
      for (const r of registries) await r.stop().catch(() => undefined);
      await removeRun(id);
    })();
    return closed;
  };
  // A run that is interrupted still takes its engines down: `exit` handlers must be synchronous, hence the shell.
  const onExit = () => {
    try {
      spawnSync("bash", ["-c", cleanupScript(id)], { stdio: "ignore", timeout: 60_000 });
    } catch {
      // the next run's removeStaleRuns() finishes it
    }
  };
  process.on("exit", onExit);

  try {
    const net = await pickSubnet();
    const bridge = `${PREFIX}${id}`;
    const bridgeIp = `${net}.1`;
    await ip(["link", "add", bridge, "type", "bridge"]);
    await ip(["addr", "add", `${bridgeIp}/24`, "dev", bridge]);
    await ip(["link", "set", bridge, "up"]);
    await iptables(["-I", "FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"]);

    const registryPort = await freePort();
    const registryHost = `${bridgeIp}:${registryPort}`;
    const count = opts.workers ?? 1;
    const nodes: SwarmNodeHandle[] = [];
    for (let i = 0; i <= count; i++) {
      const short = i === 0 ? "m" : `w${i}`;
      const netns = `${PREFIX}-${id}-${short}`;
      const veth = `${PREFIX}${id}${short}`;
      const nodeIp = `${net}.${i + 2}`;
      await ip(["netns", "add", netns]);
      await ip(["link", "add", veth, "type", "veth", "peer", "name", `${veth}p`]);
      await ip(["link", "set", `${veth}p`, "netns", netns]);
      await ip(["link", "set", veth, "master", bridge, "up"]);
      await ip(["-n", netns, "link", "set", "lo", "up"]);
      await ip(["-n", netns, "link", "set", `${veth}p`, "name", "eth0"]);
      await ip(["-n", netns, "addr", "add", `${nodeIp}/24`, "dev", "eth0"]);
      await ip(["-n", netns, "link", "set", "eth0", "up"]);
      const nodeDir = path.join(dir, short);
      const socket = path.join(nodeDir, "docker.sock");
      nodes.push({
        role: i === 0 ? "manager" : "worker",
        hostname: netns,
        netns,
        ip: nodeIp,
        socket,
        dir: nodeDir,
        nodeId: "",
        api: new Docker({ socketPath: socket }),
      });
    }
    // Every registry this run starts listens on the bridge: the whole /24 is plain HTTP to the nodes.
    const insecure = `${net}.0/24`;
    await Promise.all(nodes.map((n) => startEngine(n, insecure)));

    const cli = (
      node: SwarmNodeHandle,
      args: readonly string[],
      o: { allowFailure?: boolean; timeoutMs?: number; env?: Record<string, string>; cwd?: string } = {},
    ) =>
      // A CLI config of its own: a `docker login` here must not touch this machine's ~/.docker.
      runCommand("docker", ["--config", path.join(dir, "cli"), "-H", `unix://${node.socket}`, ...args], {
        env: { ...process.env, DOCKER_BUILDKIT: "0", ...o.env },
        cwd: o.cwd,
        timeoutMs: o.timeoutMs ?? 120_000,
        allowFailure: o.allowFailure,
      });
    const [manager, ...workers] = nodes as [SwarmNodeHandle, ...SwarmNodeHandle[]];
    await cli(manager, ["swarm", "init", "--advertise-addr", manager.ip, "--dispatcher-heartbeat", opts.heartbeat ?? "5s"]);
    const { stdout: token } = await cli(manager, ["swarm", "join-token", "-q", "worker"]);
    for (const w of workers) await cli(w, ["swarm", "join", "--token", token.trim(), `${manager.ip}:2377`]);
    for (const n of nodes) {
      const info = (await n.api.info()) as { Swarm: { NodeID: string } };
      n.nodeId = info.Swarm.NodeID;
    }
    await waitFor(
      async () => {
        const listed = (await manager.api.listNodes()) as Array<{ Status: { State: string } }>;
        return listed.length === nodes.length && listed.every((n) => n.Status.State === "ready");
      },
      { timeoutMs: 30_000, what: "every node ready in the swarm" },
    );

    const registry = await startRegistry({ ...(await opts.registry?.(registryHost, manager.ip)), address: bridgeIp, port: registryPort });
    registries.push(registry);
    await recordHostPid(registry.pid);

    const swarm: MultiNodeSwarm = {
      id,
      bridgeIp,
      manager,
      workers,
      nodes,
      registry,
      docker: cli,
      async loadImages(tags, node = manager) {
        // Through a file: one `docker save` of several images shares their base layers.
        const file = path.join(dir, `images-${randomBytes(3).toString("hex")}.tar`);
        try {
          await hostDocker(["save", "--output", file, ...tags], { timeoutMs: 300_000 });
          await cli(node, ["load", "--input", file], { timeoutMs: 300_000 });
        } finally {
          await rm(file, { force: true });
        }
      },
      async push(localTag, target) {
        await cli(manager, ["tag", localTag, target]);
        const { stdout, stderr } = await cli(manager, ["push", target], { timeoutMs: 300_000 });
        const m = /digest:\s*(sha256:[0-9a-f]{64})/.exec(stdout + stderr);
        if (!m?.[1]) throw new Error(`push of ${target} printed no digest:\n${stdout}\n${stderr}`);
        return m[1];
      },
      async startRegistry(o = {}) {
        const r = await startRegistry({ ...o, address: bridgeIp });
        registries.push(r);
        await recordHostPid(r.pid);
        return r;
      },
      async killEngine(node) {
        const pid = Number((await readFile(path.join(node.dir, "dockerd.pid"), "utf8")).trim());
        process.kill(pid, "SIGKILL");
        await waitFor(async () => !alive(pid), { timeoutMs: 10_000, intervalMs: 50, what: `dockerd ${pid} gone` });
      },
      async restartEngine(node) {
        await rm(path.join(node.dir, "dockerd.pid"), { force: true });
        await startEngine(node, insecure);
      },
      async nodeState(node) {
        const n = (await manager.api.getNode(node.nodeId).inspect()) as { Status: { State: string }; Spec: { Availability: string } };
        return { state: n.Status.State, availability: n.Spec.Availability };
      },
      close,
    };
    return swarm;
  } catch (err) {
    await close();
    throw err;
  }
}

/** The same removal as removeRun(), as one shell script for a synchronous `exit` handler. */
function cleanupScript(id: string): string {
  const p = `${PREFIX}-${id}`;
  const bridge = `${PREFIX}${id}`;
  return [
    `for ns in $(ip netns list | awk '{print $1}' | grep '^${p}-'); do for pid in $(ip netns pids "$ns"); do kill -9 "$pid" 2>/dev/null; done; done`,
    "sleep 1",
    `for ns in $(ip netns list | awk '{print $1}' | grep '^${p}-'); do ip netns delete "$ns"; done`,
    `if [ -f ${STATE_ROOT}/${p}/host-pids.json ]; then for pid in $(tr -d '[]' < ${STATE_ROOT}/${p}/host-pids.json | tr ',' ' '); do kill -9 "$pid" 2>/dev/null; done; fi`,
    `iptables -w -D FORWARD -i ${bridge} -o ${bridge} -j ACCEPT 2>/dev/null`,
    `ip link delete ${bridge} 2>/dev/null`,
    `awk '{print $5}' /proc/self/mountinfo | grep '^${STATE_ROOT}/${p}' | sort -r | xargs -r -n1 umount -l 2>/dev/null`,
    `rm -rf ${STATE_ROOT}/${p}`,
    "true",
  ].join("\n");
}
