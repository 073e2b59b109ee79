import { getManagedService, type OperationsDeps } from "./operations-deps.js";

/** Lifts a hold; webhooks and the poller deploy the service again. Idempotent. */
export async function resumeService(deps: OperationsDeps, input: { service: string }): Promise<{ service: string; wasHeld: boolean }> {
  const service = await getManagedService(deps, input.service);
  return { service: service.name, wasHeld: deps.holds.release(service.name) };
}
