/**
 * The Docker client and the two rules every Engine API request path obeys:
 * nothing but a valid Docker name or reference reaches a path, and every
 * segment is percent-escaped. The engine decodes a path and then cleans it
 * (`/services/x%2F..%2F..` is `/`), so escaping alone would still let input
 * reach another endpoint: the check comes first, the escaping is for the rest.
 */
import nodeHttp from "node:http";
import nodeHttps from "node:https";
import Docker from "dockerode";
// docker-modem's copy of follow-redirects; see refuseRedirects below.
import modemHttp from "docker-modem/lib/http.js";
import { isServiceRef } from "../domain/service-ref.js";
import { SwarmNotFoundError } from "./swarm-port.js";

/**
 * docker-modem follows a 3xx by building a URL from a socket request that has
 * no host, and `new URL("http:/")` then throws inside a response callback that
 * nothing can catch: the process dies. The Engine API never redirects a request
 * it serves, so a 3xx is answered to the caller as the error it is.
 */
function refuseRedirects(): void {
  modemHttp.http.request = (options: nodeHttp.RequestOptions) => nodeHttp.request(options);
  modemHttp.https.request = (options: nodeHttps.RequestOptions) => nodeHttps.request(options);
}
refuseRedirects();

/**
 * A Docker client for `dockerHost` (DOCKER_HOST syntax). Unset or empty means
 * docker-modem's own defaults, which also read DOCKER_HOST, DOCKER_TLS_VERIFY
 * and DOCKER_CERT_PATH from the environment and fall back to the default socket.
 * No API version is pinned: engines 29.0–29.2 refuse 1.41 by default, and every
 * field used here exists in the daemon's default version.
 */
export function createDockerClient(dockerHost?: string): Docker {
  // docker-modem reads DOCKER_HOST itself, TLS certificates and ssh agent included.
  if (!dockerHost || dockerHost === process.env.DOCKER_HOST) return new Docker();
  if (dockerHost.startsWith("unix://") || dockerHost.startsWith("npipe://")) {
    const socketPath = dockerHost.replace(/^(unix|npipe):\/\//, "");
    // `host: undefined` so that a tcp DOCKER_HOST in the environment cannot win
    // over the socket we were asked for (docker-modem merges env defaults first).
    return new Docker({ host: undefined, socketPath: socketPath || "/var/run/docker.sock" });
  }
  const url = new URL(dockerHost.includes("//") ? dockerHost : `tcp://${dockerHost}`);
  if (url.protocol === "ssh:") {
    return new Docker({ protocol: "ssh", host: url.hostname, port: url.port || 22, username: url.username });
  }
  // Docker's convention: 2376 is the TLS port, 2375 plain HTTP.
  const tls = url.protocol === "https:" || url.port === "2376" || process.env.DOCKER_TLS_VERIFY === "1";
  return new Docker({ protocol: tls ? "https" : "http", host: url.hostname, port: url.port || (tls ? 2376 : 2375) });
}

/**
 * A service name or id as one escaped path segment. Anything that cannot name
 * a service is not found, without a request: no such service can exist.
 */
export function serviceSegment(idOrName: string): string {
  if (!isServiceRef(idOrName)) throw new SwarmNotFoundError(`no service ${JSON.stringify(idOrName)}: not a Docker service name or id`);
  return encodeURIComponent(idOrName);
}

/**
 * An image reference (`registry:port/repo:tag`, `repo@sha256:…`, an image id)
 * as the `{name:.*}` part of `/images/…`: each slash-separated part escaped,
 * and no empty, `.` or `..` part, which the engine's path cleaning would act on.
 */
export function imageSegments(reference: string): string {
  const parts = reference.split("/");
  if (parts.some((p) => p === "" || p === "." || p === ".." || p.length > 255) || reference.length > 1024) {
    throw new SwarmNotFoundError(`no image ${JSON.stringify(reference)}: not an image reference`);
  }
  return parts.map(encodeURIComponent).join("/");
}
