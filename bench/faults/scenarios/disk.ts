import { execFileSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { skipped, type Row, type Scenario } from "../../lib/scenario.js";
import { sleep, summarize } from "../../lib/stats.js";
import { buildWorld, dockerHelpersOrReason, outcomeOf, outcomeRows, readDb, sendPush, serverEnv, startServer } from "../lib/world.js";

/** Writes zeros into `file` until the file system refuses (ENOSPC). */
function fill(file: string): number {
  const fd = openSync(file, "w");
  const block = Buffer.alloc(64 * 1024);
  let written = 0;
  try {
    for (;;) written += writeSync(fd, block);
  } catch {
    return written;
  } finally {
    closeSync(fd);
  }
}

/**
 * The database on a small tmpfs that fills up while the server runs: pushes
 * and API writes meanwhile must get a clear error, write nothing half, and
 * leave the server up; once space returns, the next push deploys.
 */
export const disk: Scenario = {
  key: "disk",
  title: "5. full disk under the database",
  async run(ctx) {
    const h = await dockerHelpersOrReason();
    if (typeof h === "string") return skipped(`needs Docker in swarm mode and docker-registry: ${h}`);
    const mount = join(ctx.tmp, "small-disk");
    mkdirSync(mount, { recursive: true });
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", mount], { stdio: "pipe" });
    } catch (err) {
      return skipped(`cannot mount a tmpfs here (needs root): ${(err as Error).message.split("\n")[0]}`);
    }
    ctx.cleanup.add(`unmount ${mount}`, () => execFileSync("umount", ["-l", mount]));
    const world = await buildWorld(ctx, h, { name: "fault-disk", notify: false });
    world.dbPath = join(mount, "deployer.db");
    const server = await startServer(ctx, world, serverEnv(ctx, world));
    const apiWrite = await ctx.tokens.signApiToken({ sub: "operator", scopes: ["deployments:read", "deployments:write"] });

    const first = await world.pushVariant(1);
    await sendPush(server, world, first);
    await outcomeOf(world, [first], first);
    const before = readDb(world.dbPath, world.service);

    const filler = join(mount, "filler");
    fill(filler);
    const answers: Array<{ what: string; status: number; envelope: boolean; code?: string }> = [];
    for (let i = 2; i <= 6; i++) {
      const digest = await world.pushVariant(i);
      const a = await sendPush(server, world, digest);
      answers.push({ what: "webhook", status: a.status, envelope: a.envelope });
      const res = await fetch(`${server.url}/api/services/${world.service}/deploy`, {
        method: "POST",
        headers: { authorization: `Bearer ${apiWrite}`, "content-type": "application/json" },
        body: JSON.stringify({ digest }),
      });
      const body = (await res.json().catch(() => ({}))) as { error?: { code?: string } };
      answers.push({ what: "api deploy", status: res.status, envelope: body.error?.code !== undefined || res.status < 400, code: body.error?.code });
    }
    await sleep(500);
    const alive = server.child.exitCode === null && server.child.signalCode === null;
    const during = alive ? readDb(world.dbPath, world.service) : undefined;
    const readyWhileFull = alive ? (await fetch(`${server.url}/readyz`)).status : 0;

    rmSync(filler);
    const last = await world.pushVariant(7);
    const recovered = alive ? await sendPush(server, world, last) : { status: 0, ms: 0, envelope: false };
    const outcome = alive ? await outcomeOf(world, [last], last) : undefined;

    const refused = answers.filter((a) => a.status >= 400);
    const clear = answers.every((a) => a.status === 503 && a.envelope);
    const written = during ? during.deployments - before.deployments + (during.triggers - before.triggers) : Number.NaN;
    const one = (v: number) => summarize([v]);
    const rows: Row[] = [
      { metric: "server alive while full", unit: "", value: one(alive ? 1 : 0), target: "1", ok: alive },
      {
        metric: "writes answered 503 in the envelope",
        unit: "",
        value: one(answers.filter((a) => a.status === 503 && a.envelope).length),
        target: `${answers.length}`,
        ok: clear,
      },
      { metric: "rows written while full", unit: "", value: one(written), target: "0", ok: written === 0 },
      { metric: "push after space returns", unit: "status", value: one(recovered.status), target: "202", ok: recovered.status === 202 },
      ...(outcome ? outcomeRows(outcome) : []),
    ];
    // The server's own account of the fault, for whoever reads the figures.
    const errors = server
      .logs()
      .filter((l) => l.level === "error" || l.level === "fatal")
      .map((l) => `${String(l.msg)}${l.err ? `: ${String((l.err as { message?: string }).message)}` : ""}`);
    return {
      json: {
        errorLog: [...new Set(errors)].slice(0, 10),
        answers,
        refused: refused.length,
        readyzWhileFull: readyWhileFull,
        rowsWrittenWhileFull: written,
        recoveredStatus: recovered.status,
        ...outcome,
      },
      rows,
    };
  },
};
