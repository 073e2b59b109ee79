/**
 * The small protocol between `bench/run.ts` and the servers it measures: each
 * child announces its port once, then answers numbered requests over Node's
 * IPC channel, so nothing about the measurement travels over the HTTP port
 * under load.
 */
export type RpcHandlers = Record<string, (args: Record<string, unknown>) => unknown>;

export interface ReadyMessage {
  type: "ready";
  port: number;
  extra?: Record<string, unknown>;
}

export function announceReady(port: number, extra?: Record<string, unknown>): void {
  process.send?.({ type: "ready", port, extra } satisfies ReadyMessage);
}

export function answerRpc(handlers: RpcHandlers): void {
  process.on("message", (raw) => {
    const msg = raw as { id?: number; cmd?: string; args?: Record<string, unknown> };
    if (typeof msg.id !== "number" || typeof msg.cmd !== "string") return;
    const handler = handlers[msg.cmd];
    Promise.resolve()
      .then(() => {
        if (!handler) throw new Error(`unknown command ${msg.cmd}`);
        return handler(msg.args ?? {});
      })
      .then(
        (result) => process.send?.({ id: msg.id, result }),
        (err: unknown) => process.send?.({ id: msg.id, error: (err as Error).message ?? String(err) }),
      );
  });
  // The parent going away (even by SIGKILL) closes the channel; never outlive it.
  process.on("disconnect", () => process.exit(0));
}
