import { describe, expect, it } from "vitest";
import { freePortOnLoopback } from "../helpers/ports.js";

describe("test ports", () => {
  it("never hands out the same port twice in a process, even once it is free again", async () => {
    const ports = [];
    for (let i = 0; i < 300; i++) ports.push(await freePortOnLoopback());
    expect(new Set(ports).size).toBe(ports.length);
  });
});
