/** The dashboard's sessions over a real SQLite file: sealed under the server's key, ended by expiry, a lost key or the cap. */
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { createSealer } from "../../server/auth/sealing.js";
import { createTokenService } from "../../server/auth/tokens.js";
import {
  createSessions,
  LacksReadScopeError,
  MAX_SESSIONS,
  SESSION_MAX_MS,
  SESSIONS_PER_TOKEN,
  SessionsFullError,
} from "../../server/http/dashboard/sessions.js";
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
  /** `n` sessions of other tokens, valid for a minute, written in one go. */
  const fill = (n: number) => {
    const insert = database.sqlite.prepare(
      "insert into dashboard_sessions (id_hash, sealed, created_at, expires_at, owner) values (?, 'x', ?, ?, ?)",
    );
    database.sqlite.transaction(() => {
      for (let i = 0; i < n; i++) insert.run(`h${i}`, t, t + 60_000, `o${i}`);
    })();
  };
  return { clock, store, tokens, sessions, rows, fill };
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

  it("keep a token's sessions to SESSIONS_PER_TOKEN by ending its own oldest, never another token's", async () => {
    const w = world();
    const mine = await w.tokens.signApiToken({ sub: "ops", scopes: ["deployments:read"], expiresIn: "30d" });
    const theirs = await w.tokens.signApiToken({ sub: "alice", scopes: ["deployments:read"], expiresIn: "30d" });
    const sessions = w.sessions(key);
    const alice = await sessions.open(theirs);
    const opened: string[] = [];
    for (let i = 0; i < SESSIONS_PER_TOKEN + 5; i++) {
      w.clock.advance(1);
      opened.push((await sessions.open(mine)).id);
    }
    expect(w.rows().n).toBe(SESSIONS_PER_TOKEN + 1);
    expect(await sessions.resolve(alice.id), "another token's session stays").toBeDefined();
    expect(await sessions.resolve(opened[4]!), "the fifth of mine went for the fifteenth").toBeUndefined();
    expect(await sessions.resolve(opened[5]!)).toBeDefined();
    expect(await sessions.resolve(opened.at(-1)!)).toBeDefined();
  });

  it("count a token's sessions by the token, however its text is spelt (the signature's last character has four spellings)", async () => {
    const w = world();
    const token = await w.tokens.signApiToken({ sub: "ops", scopes: ["deployments:read"], expiresIn: "30d" });
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const last = alphabet.indexOf(token.at(-1)!);
    // The last of 43 base64url characters carries 4 bits of the signature and 2 that decoding drops.
    const spellings = [0, 1, 2, 3].map((low) => token.slice(0, -1) + alphabet[(last & ~3) | low]);
    for (const spelt of spellings) expect((await w.tokens.verifyApiToken(spelt)).sub).toBe("ops");
    const sessions = w.sessions(key);
    for (let i = 0; i < SESSIONS_PER_TOKEN * 2; i++) {
      w.clock.advance(1);
      await sessions.open(spellings[i % 4]!);
    }
    expect(w.rows().n).toBe(SESSIONS_PER_TOKEN);
  });

  it("count a hand-made token without a jti by its subject and expiry", async () => {
    const w = world();
    const exp = Math.floor(w.clock.now() / 1000) + 86_400;
    const sign = (extra: Record<string, unknown>) =>
      new SignJWT({ sub: "ops", scope: "deployments:read", exp, ...extra })
        .setProtectedHeader({ alg: "HS256" })
        .setAudience("deployer:api")
        .sign(new TextEncoder().encode(key));
    const sessions = w.sessions(key);
    // Two texts of one token (another claim order, an iat): the same subject and expiry, the same owner.
    const texts = [await sign({}), await sign({ iat: exp - 86_400 })];
    for (let i = 0; i < SESSIONS_PER_TOKEN + 4; i++) {
      w.clock.advance(1);
      await sessions.open(texts[i % 2]!);
    }
    expect(w.rows().n).toBe(SESSIONS_PER_TOKEN);
    await sessions.open(await sign({ exp: exp + 1 }));
    expect(w.rows().n, "another expiry is another token").toBe(SESSIONS_PER_TOKEN + 1);
  });

  it("open in place of the browser's earlier session, ending it and no other, though the token holds its most", async () => {
    const w = world();
    const token = await w.tokens.signApiToken({ sub: "ops", scopes: ["deployments:read"], expiresIn: "30d" });
    const sessions = w.sessions(key);
    const ids: string[] = [];
    for (let i = 0; i < SESSIONS_PER_TOKEN; i++) {
      w.clock.advance(1);
      ids.push((await sessions.open(token)).id);
    }
    w.clock.advance(1);
    const again = await sessions.open(token, ids[5]);
    expect(await sessions.resolve(ids[5]!), "the browser's own earlier session").toBeUndefined();
    for (const id of ids.filter((_, i) => i !== 5)) expect(await sessions.resolve(id), "the other browsers' sessions").toBeDefined();
    expect(await sessions.resolve(again.id)).toBeDefined();
    expect(w.rows().n).toBe(SESSIONS_PER_TOKEN);
  });

  it("refuse a sign-in when MAX_SESSIONS are open, writing nothing and ending none, and drop expired ones when one opens", async () => {
    const w = world();
    const token = await w.tokens.signApiToken({ sub: "ops", scopes: ["deployments:read"], expiresIn: "30d" });
    const first = await w.sessions(key).open(token);
    const row = (i: number) => ({ idHash: `h${i}`, sealed: "x", createdAt: w.clock.now(), expiresAt: w.clock.now() + 10, owner: `o${i}` });
    const limits = { perOwner: SESSIONS_PER_TOKEN, total: 3 };
    expect(w.store.add(row(1), limits)).toBe(true);
    expect(w.store.add(row(2), limits)).toBe(true);
    expect(w.store.add(row(3), limits), "full").toBe(false);
    expect(w.rows().n).toBe(3);
    expect(await w.sessions(key).resolve(first.id), "nobody's session ended for it").toBeDefined();
    w.clock.advance(60_000);
    await w.sessions(key).open(token);
    expect(w.rows().n, "the expired ones went when this one opened").toBe(2);
  });

  it("say a full table and a token without the read scope apart from a bad token", async () => {
    const w = world();
    const write = await w.tokens.signApiToken({ sub: "ops", scopes: ["deployments:write"] });
    await expect(w.sessions(key).open(write)).rejects.toBeInstanceOf(LacksReadScopeError);
    w.fill(MAX_SESSIONS);
    const read = await w.tokens.signApiToken({ sub: "ops", scopes: ["deployments:read"] });
    await expect(w.sessions(key).open(read)).rejects.toBeInstanceOf(SessionsFullError);
    expect(w.rows().n).toBe(MAX_SESSIONS);
  });
});
