import { describe, expect, it } from "vitest";
import { pullBudget, pullsFor } from "../../server/poller/pull-budget.js";

describe("the pull budget's arithmetic", () => {
  it("counts a pull per replica, and per node a global service runs on", () => {
    expect(pullsFor({ mode: "replicated", replicas: 3 })).toBe(3);
    expect(pullsFor({ mode: "replicated", replicas: 0 })).toBe(1);
    expect(pullsFor({ mode: "global", runningTasks: 5 })).toBe(5);
    expect(pullsFor({ mode: "global", runningTasks: 0 })).toBe(1);
    expect(pullsFor({ mode: "global" })).toBe(1);
  });

  it("keeps a tenth of the limit in reserve and waits for it to refill", () => {
    expect(pullBudget({ limit: 100, remaining: 12, windowSeconds: 21_600 }, 30_000)).toEqual({ spendable: 2, backoffMs: 36 * 60_000 });
    expect(pullBudget(undefined, 30_000)).toEqual({ backoffMs: 15 * 60_000 });
  });
});
