import { expect } from "vitest";
import type { DeploymentPatch } from "../../server/store/deployment-store.js";
import type { TestServer } from "./test-server.js";

/** The error SQLite gives a write on a full disk. */
export const diskFull = () => Object.assign(new Error("database or disk is full"), { code: "SQLITE_FULL" });

/**
 * Makes the store refuse, as a full disk does, the status changes `when` picks: the first `times` of them (every one
 * by default). `refused()` counts the refusals.
 */
export function refuseTransitions(server: Pick<TestServer, "store">, when: (patch: DeploymentPatch) => boolean, times = Infinity) {
  const real = server.store.transition;
  let refused = 0;
  server.store.transition = (id, patch, message) => {
    if (refused < times && when(patch)) {
      refused++;
      throw diskFull();
    }
    return real(id, patch, message);
  };
  return { refused: () => refused };
}

/**
 * Makes every write fail the way a disk that is full or failing makes it fail,
 * with SQLite's own error, for every statement at once: a full disk's
 * SQLITE_FULL depends on which page a write lands in, so it is measured on a
 * real full tmpfs by `npm run faults` instead; here the database refuses
 * writes as a file system remounted read-only does (SQLITE_READONLY).
 * `lift` gives writing back.
 */
export function fillDatabase(server: TestServer) {
  const sqlite = server.database.sqlite;
  sqlite.pragma("query_only = 1");
  expect(() => sqlite.exec("create table filler (x)")).toThrow(expect.objectContaining({ code: "SQLITE_READONLY" }));
  return { lift: () => sqlite.pragma("query_only = 0") };
}

/**
 * Makes every transaction fail at its commit, as a disk that fills while the
 * write is under way makes it fail (the pages go to the WAL at COMMIT): all
 * of the transaction's statements ran, and nothing of them stays.
 */
export function failCommits(server: TestServer) {
  const sqlite = server.database.sqlite;
  const real = sqlite.transaction;
  let depth = 0;
  sqlite.transaction = function (fn: (...args: unknown[]) => unknown) {
    return real.call(sqlite, (...args: unknown[]) => {
      depth++;
      try {
        const result = fn(...args);
        if (depth === 1) throw diskFull();
        return result;
      } finally {
        depth--;
      }
    });
  } as typeof real;
  return { lift: () => (sqlite.transaction = real) };
}
