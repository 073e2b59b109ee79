import { connect } from "node:net";

/** What came back for one request sent as raw bytes: the status (0 when the server closed without answering), the body, the time to the full answer. */
export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  ms: number;
  /** "closed" when the connection ended without a status line, "timeout" when nothing complete came in time. */
  failure?: "closed" | "timeout" | "error";
}

export interface RawRequest {
  /** The bytes to send, all at once or, for a slow client, in `chunks` spaced `gapMs` apart. */
  bytes: Buffer;
  chunkSize?: number;
  gapMs?: number;
  /** Half-close once everything is sent: the server sees the stream end (a body cut short). */
  end?: boolean;
}

/**
 * Sends bytes to 127.0.0.1:port over a fresh connection and reads the answer
 * until the server closes or the declared length has arrived. Raw, so that
 * broken framing, odd headers and slow senders can be sent at all.
 */
export function rawRequest(port: number, req: RawRequest, timeoutMs = 10_000): Promise<RawAnswer> {
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let data = Buffer.alloc(0);
    let done = false;
    const finish = (failure?: RawAnswer["failure"]) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const parsed = parseAnswer(data);
      resolve({
        ...(parsed ?? { status: 0, headers: {}, body: "" }),
        ms: performance.now() - started,
        ...(parsed ? {} : { failure: failure ?? "closed" }),
      });
    };
    const timer = setTimeout(() => finish("timeout"), timeoutMs);
    socket.on("data", (chunk) => {
      data = Buffer.concat([data, chunk]);
      if (isComplete(data)) finish();
    });
    socket.on("error", () => finish("error"));
    socket.on("close", () => finish("closed"));
    socket.on("connect", () => {
      void (async () => {
        const size = req.chunkSize ?? req.bytes.length;
        for (let at = 0; at < req.bytes.length && !done; at += size) {
          if (at > 0 && req.gapMs) await new Promise((r) => setTimeout(r, req.gapMs));
          if (!socket.destroyed) socket.write(req.bytes.subarray(at, at + size));
        }
        if (req.end && !socket.destroyed) socket.end();
      })();
    });
  });
}

function splitHead(data: Buffer): { head: string; body: Buffer } | undefined {
  const end = data.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  return { head: data.subarray(0, end).toString("latin1"), body: data.subarray(end + 4) };
}

function headersOf(head: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of head.split("\r\n").slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}

function isComplete(data: Buffer): boolean {
  const split = splitHead(data);
  if (!split) return false;
  const headers = headersOf(split.head);
  if (headers["content-length"] !== undefined) return split.body.length >= Number(headers["content-length"]);
  if (headers["transfer-encoding"]?.includes("chunked"))
    return split.body.includes("\r\n0\r\n\r\n") || split.body.subarray(0, 5).toString() === "0\r\n\r\n";
  return false;
}

function dechunk(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const nl = body.indexOf("\r\n", at);
    if (nl < 0) break;
    const size = parseInt(body.subarray(at, nl).toString(), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(body.subarray(nl + 2, nl + 2 + size));
    at = nl + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

function parseAnswer(data: Buffer): Omit<RawAnswer, "ms"> | undefined {
  const split = splitHead(data);
  if (!split) return undefined;
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(split.head)?.[1];
  if (!status) return undefined;
  const headers = headersOf(split.head);
  const body = headers["transfer-encoding"]?.includes("chunked") ? dechunk(split.body) : split.body;
  return { status: Number(status), headers, body: body.toString("utf8") };
}

/** True when an error answer is the contract's envelope: {"error": {"code": UPPER_SNAKE, "message", "requestId"}}. */
export function isEnvelope(answer: Pick<RawAnswer, "body" | "headers">): boolean {
  if (!answer.headers["content-type"]?.includes("application/json")) return false;
  try {
    const e = (JSON.parse(answer.body) as { error?: { code?: unknown; message?: unknown; requestId?: unknown } }).error;
    return typeof e?.code === "string" && /^[A-Z][A-Z_]*$/.test(e.code) && typeof e.message === "string" && typeof e.requestId === "string";
  } catch {
    return false;
  }
}

/** One well-formed HTTP/1.1 request as bytes. */
export function httpBytes(method: string, path: string, headers: Record<string, string>, body?: Buffer | string): Buffer {
  const payload = body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body);
  const all: Record<string, string> = { host: "127.0.0.1", connection: "close", ...headers };
  if (body !== undefined && !Object.keys(all).some((k) => k.toLowerCase() === "content-length" || k.toLowerCase() === "transfer-encoding")) {
    all["content-length"] = String(payload.length);
  }
  const head = `${method} ${path} HTTP/1.1\r\n${Object.entries(all)
    .map(([k, v]) => `${k}: ${v}`)
    .join("\r\n")}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, "latin1"), payload]);
}
