import { SwarmUnavailableError } from "./swarm-port.js";

/**
 * `promise`, or a SwarmUnavailableError once `ms` have passed without an
 * answer. For waits whose caller must answer someone in time (a webhook, a
 * readiness probe); the call itself goes on, and a late failure of it is
 * ignored here.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SwarmUnavailableError(`${what} did not answer within ${ms} ms`)), ms);
  });
  promise.catch(() => undefined);
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
