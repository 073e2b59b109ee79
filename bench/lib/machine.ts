import { spawnSync } from "node:child_process";
import os from "node:os";

/** What the figures were measured on; the load average says how busy the shared machine was. */
export function describeMachine() {
  const docker = spawnSync("docker", ["version", "--format", "{{.Server.Version}}"], { encoding: "utf8", timeout: 10_000 });
  return {
    cpus: os.cpus().length,
    model: os.cpus()[0]?.model.trim() ?? "unknown",
    memoryMb: Math.round(os.totalmem() / 2 ** 20),
    node: process.version,
    docker: docker.status === 0 ? docker.stdout.trim() : null,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAvgAtStart: os.loadavg().map((v) => Math.round(v * 100) / 100),
  };
}
