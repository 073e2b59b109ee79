import { MultiBar, Presets, type SingleBar } from "cli-progress";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { call, CliError, EXIT, send, type ApiTarget } from "./api-client.js";
import { printable, printableLines, type DeploymentJson } from "./render.js";

/**
 * `deployer follow ID`: a deployment's progress from its event stream
 * (GET /api/deployments/:id/events) until its final status. On a terminal a
 * progress bar of the tasks running the new digest, with the timeline above
 * it; otherwise one plain line per entry; with --json one JSON object per
 * event. A stream that drops (a restart, a proxy, a slow terminal) is opened
 * again with Last-Event-ID, so no entry is missed or shown twice; only when
 * the server no longer has that id (its database restored from an older
 * backup) does the timeline start over from its first entry.
 */
export interface FollowOptions {
  target: ApiTarget;
  id: string;
  json: boolean;
  out: NodeJS.WritableStream & { isTTY?: boolean };
  /** Reconnects in a row without reaching the server before giving up; 10 by default. */
  maxRetries?: number;
  retryMs?: number;
}

interface StreamData {
  deploymentId: string;
  service: string;
  status: string;
  entry: { at: string; status: string; message: string };
  progress?: { running: number; desired: number };
}

/** Succeeded, or skipped (the digest already ran or was queued): 0. Failed, rolled back, superseded: 1. */
export const exitCodeFor = (status: string) => (status === "succeeded" || status === "skipped" ? 0 : EXIT.failed);
const terminal = new Set(["succeeded", "failed", "rolled_back", "skipped", "superseded"]);

function display(opts: FollowOptions) {
  const tty = !opts.json && opts.out.isTTY === true;
  const multibar = tty
    ? new MultiBar(
        { format: "{service} [{bar}] {value}/{total} tasks on the new digest | {status}", hideCursor: true, stream: opts.out as NodeJS.WriteStream },
        Presets.shades_classic,
      )
    : undefined;
  let bar: SingleBar | undefined;
  const line = (d: StreamData) =>
    printable(`${d.entry.at.replace("T", " ").replace(/\.\d+Z$/, "Z")}  ${d.entry.status.padEnd(11)} ${d.entry.message}`);
  return {
    show(m: EventSourceMessage, d: StreamData) {
      if (opts.json) return void opts.out.write(`${printableLines(JSON.stringify({ id: m.id, event: m.event, ...d }))}\n`);
      // Until the first task count there is no bar to draw the line above.
      if (!multibar || (!bar && !d.progress)) return void opts.out.write(`${line(d)}\n`);
      multibar.log(`${line(d)}\n`);
      if (d.progress) {
        bar ??= multibar.create(d.progress.desired, 0, { service: printable(d.service), status: printable(d.status) });
        bar.setTotal(d.progress.desired);
        bar.update(d.progress.running, { service: printable(d.service), status: printable(d.status) });
      } else bar?.update({ status: printable(d.status) });
      multibar.update(); // draw now, the line included, rather than on the next tick
    },
    stop: () => multibar?.stop(),
  };
}

/** Reads one connection's events; resolves with the final one, or undefined when the stream ended before it. */
async function readStream(res: Response, onEvent: (m: EventSourceMessage) => void): Promise<StreamData | undefined> {
  let final: StreamData | undefined;
  const parser = createParser({
    onEvent: (m) => {
      if (final) return;
      onEvent(m);
      if (m.event === "final") final = JSON.parse(m.data) as StreamData;
    },
  });
  const decoder = new TextDecoder();
  const reader = res.body!.getReader();
  try {
    while (!final) {
      const { done, value } = await reader.read();
      if (done) break;
      parser.feed(decoder.decode(value, { stream: true }));
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return final;
}

/** Follows the deployment to its end; returns its final status. */
export async function follow(opts: FollowOptions): Promise<string> {
  const view = display(opts);
  const path = `/api/deployments/${encodeURIComponent(opts.id)}`;
  const maxRetries = opts.maxRetries ?? 10;
  let lastId: string | undefined;
  let failures = 0;
  try {
    for (;;) {
      try {
        const res = await send(opts.target, `${path}/events`, { headers: lastId ? { "last-event-id": lastId } : {} });
        failures = 0;
        const final = await readStream(res, (m) => {
          lastId = m.id ?? lastId;
          view.show(m, JSON.parse(m.data) as StreamData);
        });
        if (final) return final.status;
        // Ended without a final event: the record says whether there is more to wait for.
        const dep = await call<DeploymentJson>(opts.target, "GET", path);
        if (terminal.has(dep.status)) return dep.status;
      } catch (err) {
        // An id the server no longer has (its database restored from an older backup): the timeline from its start.
        if (err instanceof CliError && err.status === 400 && lastId !== undefined) {
          lastId = undefined;
          if (++failures > maxRetries) throw err;
          continue;
        }
        // A refusal (bad token, no scope, unknown id) stays one; no place for the stream (503: all taken, 429: this
        // token's taken) and a lost connection are tried again.
        const retriable = !(err instanceof CliError) || err.exitCode === EXIT.usage || err.status === 503 || err.status === 429;
        if (!retriable || ++failures > maxRetries) throw err;
      }
      await new Promise((r) => setTimeout(r, Math.min(10_000, (opts.retryMs ?? 500) * 2 ** Math.max(0, failures - 1))));
    }
  } finally {
    view.stop();
  }
}
