/** The dashboard's sessions over a real SQLite file: sealed under the server's key, ended by expiry, a lost key or the cap. */
import { describe, expect, it } from "vitest";
import { createSealer } from "../../server/auth/sealing.js";
import { createTokenService } from "../../server/auth/tokens.js";
import { createSessions, SESSION_MAX_MS } from "../../server/http/dashboard/sessions.js";
import { createSessionStore } from "../../server/store/session-store.js";
import { testDatabase } from "../helpers/test-database.js";

const key = "the-server-key-of-this-test-long-enough-for-hs256";
const rotated = "the-key-after-a-rotation-also-long-enough-for-hs256";

function world() {
  const database = testDatabase();
  let t = Date.now();
  const clock = { now: () => t, advance: (ms: number) => (t += ms) };
  const store = createSessionStore(database.db);
  const tokens = createTokenService({ secret: key, dockerHubRegistry: "docker.io", now: clock.now });
  const sessions = (serverSecret: string, previousServerSecret?: string) =>
    createSessions({
      tokens,
      store,
      now: clock.now,
      sealer: createSealer({ serverSecret, previousServerSecret, purpose: "deployer dashboard sessions v1" }),
    });
  const rows = () => database.sqlite.prepare("select count(*) n from dashboard_sessions").get() as { n: number };
  return { clock, store, tokens, sessions, rows };
}

describe("dashboard sessions", () => {
  it("open under the key they were sealed with, or the previous one after a rotation, and not under another", async () => {
    const w = world();
    const token = await w.tokens.signApiToken({ sub: "ops", scopes: ["deployments:read"] });
    const { id } = await w.sessions(key).open(token);
    expect((await w.sessions(key).resolve(id))?.claims.sub).toBe("ops");
    expect((await w.sessions(rotated, key).resolve(id))?.claims.sub, "rotated, the previous key still configured").toBe("ops");
    expect(await w.sessions(rotated).resolve(id), "a server without the key").toBeUndefined();
    expect(w.rows().n, "a session no key here opens is dropped").toBe(0);
  });

  it("end when they expire (at most SESSION_MAX_MS) and are dropped then, and a wrong id finds nothing", async () => {
    const w = world();
    const token = await w.tokens.signApiToken({ sub: "ops", scopes: ["deployments:read"], expiresIn: "30d" });
    const sessions = w.sessions(key);
    const { id, maxAgeS } = await sessions.open(token);
    expect(maxAgeS).toBe(SESSION_MAX_MS / 1000);
    expect(await sessions.resolve(`${id}x`)).toBeUndefined();
    w.clock.advance(SESSION_MAX_MS - 1000);
    expect(await sessions.resolve(id)).toBeDefined();
    w.clock.advance(1000);
    expect(await sessions.resolve(id)).toBeUndefined();
    expect(w.rows().n).toBe(0);
  });

  it("keep at most the cap, dropping the oldest, and drop expired ones when a session opens", async () => {
    const w = world();
    const token = await w.tokens.signApiToken({ sub: "ops", scopes: ["deployments:read"], expiresIn: "30d" });
    const first = await w.sessions(key).open(token);
    w.clock.advance(1);
    for (let i = 0; i < 3; i++) {
      w.store.add({ idHash: `h${i}`, sealed: "x", createdAt: w.clock.now(), expiresAt: w.clock.now() + 10 }, 3);
      w.clock.advance(1);
    }
    expect(w.rows().n).toBe(3);
    expect(await w.sessions(key).resolve(first.id), "the oldest went for the third").toBeUndefined();
    w.clock.advance(60_000);
    await w.sessions(key).open(token);
    expect(w.rows().n, "the expired ones went when this one opened").toBe(1);
  });
});
