/**
 * What the registry client reads from response headers: the challenges of
 * `WWW-Authenticate` and Docker Hub's `ratelimit-*` values.
 */

export interface RateLimit {
  limit?: number;
  remaining?: number;
  windowSeconds?: number;
}

export interface AuthChallenge {
  /** Lower-cased: `bearer`, `basic`. */
  scheme: string;
  /** Parameter names lower-cased, values unquoted. */
  params: Record<string, string>;
}

/**
 * Parses a `WWW-Authenticate` value (several challenges may share one header when
 * a server sends the header twice) per RFC 9110 §11.6.1, quoted strings included.
 */
export function parseAuthChallenges(header: string): AuthChallenge[] {
  const challenges: AuthChallenge[] = [];
  const token = /[!#$%&'*+\-.^_`|~0-9A-Za-z]+/y;
  let current: AuthChallenge | undefined;
  let i = 0;
  const isSpace = (c = header[i]) => c === " " || c === "\t";
  while (i < header.length) {
    token.lastIndex = i;
    const name = isSpace() || header[i] === "," ? undefined : token.exec(header)?.[0];
    if (!name) {
      i++;
      continue;
    }
    for (i += name.length; isSpace();) i++;
    if (header[i] !== "=" || !current) {
      current = { scheme: name.toLowerCase(), params: {} };
      challenges.push(current);
      continue;
    }
    for (i++; isSpace();) i++;
    let value = "";
    if (header[i] === '"') {
      for (i++; i < header.length && header[i] !== '"'; i++) value += header[i] === "\\" ? (header[++i] ?? "") : header[i];
      i++;
    } else {
      while (i < header.length && !/[\s,]/.test(header[i]!)) value += header[i++];
    }
    current.params[name.toLowerCase()] = value;
  }
  return challenges;
}

// Docker Hub sends `ratelimit-limit: 100;w=21600`; absent headers mean the pull is not limited.
export function recordRateLimit(store: Map<string, RateLimit>, registry: string, headers: Headers): void {
  const [limit, limitWindow] = parseRateLimit(headers.get("ratelimit-limit"));
  const [remaining, remainingWindow] = parseRateLimit(headers.get("ratelimit-remaining"));
  if (limit === undefined && remaining === undefined) return;
  store.set(registry, { limit, remaining, windowSeconds: limitWindow ?? remainingWindow });
}

function parseRateLimit(value: string | null): [count?: number, windowSeconds?: number] {
  const match = /^\s*(\d+)\s*(?:;.*?\bw=(\d+))?/.exec(value ?? "");
  if (!match) return [];
  return [Number(match[1]), match[2] === undefined ? undefined : Number(match[2])];
}
