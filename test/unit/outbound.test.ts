/** The notifiers' view of a configured URL: a login in it becomes Basic auth, and the URL they log has none. */
import { describe, expect, it } from "vitest";
import { outbound } from "../../server/notify/outbound.js";

const basic = (login: string) => `Basic ${Buffer.from(login).toString("base64")}`;

describe("outbound", () => {
  it.each([
    ["http://apprise:8000/notify", "http://apprise:8000/notify", undefined],
    ["http://admin:hunter2@apprise:8000/notify", "http://apprise:8000/notify", basic("admin:hunter2")],
    ["http://admin:hunter2%21pw@apprise:8000/notify", "http://apprise:8000/notify", basic("admin:hunter2!pw")],
    // A `%` that starts no escape is part of the password, not a reason to stop the server.
    ["http://admin:100%@apprise:8000/notify", "http://apprise:8000/notify", basic("admin:100%")],
    ["http://admin:a b%@apprise:8000/notify", "http://apprise:8000/notify", basic("admin:a b%")],
    ["http://admin:p%C3%A9%@apprise:8000/notify", "http://apprise:8000/notify", basic("admin:pé%")],
    ["http://admin:50%off%40x@apprise:8000/notify", "http://apprise:8000/notify", basic("admin:50%off@x")],
    ["http://token@hooks.example/x", "http://hooks.example/x", basic("token:")],
  ])("%s", (configured, url, authorization) => {
    const target = outbound(configured);
    expect(target.url).toBe(url);
    expect(target.headers.authorization).toBe(authorization);
  });
});
