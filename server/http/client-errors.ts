import { randomUUID } from "node:crypto";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import { statusOf, type ErrorCode } from "../domain/app-error.js";
import { errorBody } from "./errors.js";

/**
 * What Node's HTTP parser refuses before any route runs (headers over its
 * limit, broken framing, an Expect it cannot meet) is answered in the same
 * envelope as every other error, where the socket still takes an answer;
 * Node's own answers are bare text.
 */
export function answerClientErrorsInEnvelope(server: Server, log: Logger): void {
  server.on("clientError", (err: Error & { code?: string }, socket: Duplex) => {
    if (err.code === "ECONNRESET" || !socket.writable) {
      socket.destroy();
      return;
    }
    const [code, message]: [ErrorCode, string] =
      err.code === "HPE_HEADER_OVERFLOW"
        ? ["HEADERS_TOO_LARGE", "the request headers are larger than the server accepts"]
        : ["BAD_REQUEST", `malformed HTTP request (${err.code ?? "parse error"})`];
    const requestId = randomUUID();
    log.info({ requestId, reason: err.code }, "refused a malformed HTTP request");
    const body = JSON.stringify(errorBody(code, message, requestId));
    const status = statusOf(code);
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
  server.on("checkExpectation", (req: IncomingMessage, res: ServerResponse) => {
    const body = JSON.stringify(
      errorBody("EXPECTATION_FAILED", `Expect: ${req.headers.expect} is not supported; only 100-continue is`, randomUUID()),
    );
    res.shouldKeepAlive = false;
    res.writeHead(statusOf("EXPECTATION_FAILED"), { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body);
  });
}
