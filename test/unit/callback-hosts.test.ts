/** DEPLOYER_CALLBACK_HOSTS: which callback URLs the server may call. */
import { describe, expect, it } from "vitest";
import { isCallbackAllowed } from "../../server/notify/callback-notifier.js";

describe("the callback allow-list", () => {
  it.each([
    ["https://registry.hub.docker.com/u/acme/web/hook/x/", ["registry.hub.docker.com"], true],
    ["https://REGISTRY.hub.docker.com:443/u/acme/web/hook/x/", ["registry.hub.docker.com"], true],
    ["http://registry.hub.docker.com/u/acme/web/hook/x/", ["registry.hub.docker.com"], true],
    // A host named without a port is that host on its scheme's own port, not any service it runs.
    ["http://registry.hub.docker.com:6379/x", ["registry.hub.docker.com"], false],
    ["https://registry.hub.docker.com:8443/x", ["registry.hub.docker.com"], false],
    ["https://registry.hub.docker.com:8443/x", ["registry.hub.docker.com:8443"], true],
    ["https://registry.hub.docker.com/x", ["registry.hub.docker.com:8443"], false],
    ["http://127.0.0.1:5005/cb", ["127.0.0.1:5005"], true],
    ["http://[::1]:5005/cb", ["[::1]:5005"], true],
    ["http://[::1]/cb", ["[::1]"], true],
    ["http://[::1]:5005/cb", ["[::1]"], false],
    ["https://registry.hub.docker.com.evil.example/x", ["registry.hub.docker.com"], false],
    ["https://user:pw@registry.hub.docker.com/x", ["registry.hub.docker.com"], false],
    ["ftp://registry.hub.docker.com/x", ["registry.hub.docker.com"], false],
  ])("%s with %j: %s", (url, hosts, allowed) => {
    expect(isCallbackAllowed(url, hosts)).toBe(allowed);
  });
});
