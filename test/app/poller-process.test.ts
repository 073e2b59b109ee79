import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "../helpers/temp-dir.js";
import { runServerToExit } from "../helpers/server-process.js";

describe("the server process with Shepherd's variables", () => {
  it("exits 2 naming UPDATE_OPTIONS, ROLLBACK_OPTIONS and TZ when they are bad", async () => {
    const result = await runServerToExit(
      {
        DEPLOYER_DB: join(tempDir("deployer-poll-proc-"), "d.db"),
        UPDATE_OPTIONS: "--force",
        ROLLBACK_OPTIONS: "--rollback-order sideways",
        TZ: "Nowhere/Special",
      },
      0,
    );
    expect(result.code, result.stderr).toBe(2);
    for (const name of ["UPDATE_OPTIONS: --force", "ROLLBACK_OPTIONS: --rollback-order sideways", "TZ"]) expect(result.stderr).toContain(name);
  });

  it("with RUN_ONCE_AND_EXIT exits 0 after its one cycle, even when the engine cannot be reached", async () => {
    const dir = tempDir("deployer-poll-proc-");
    const result = await runServerToExit(
      { DEPLOYER_DB: join(dir, "d.db"), DEPLOYER_POLL: "true", RUN_ONCE_AND_EXIT: "true", DOCKER_HOST: `unix://${join(dir, "no-docker.sock")}` },
      // Any valid port: RUN_ONCE_AND_EXIT opens no listener.
      8080,
    );
    expect(result.code, result.stderr).toBe(0);
    const messages = result.stdout
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l).msg as string);
    expect(messages).toContain("poll cycle: could not list swarm services; trying again next cycle");
    expect(messages).not.toContain("deploy server listening");
  });
});
