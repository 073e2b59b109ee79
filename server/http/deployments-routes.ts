import { Hono } from "hono";
import type { ApiClaims, TokenService } from "../auth/tokens.js";
import { AppError } from "../domain/app-error.js";
import type { DeploymentStore } from "../store/deployment-store.js";
import { requireScope } from "./bearer.js";
import { toDeploymentJson, toEventJson } from "./deployment-json.js";

export interface DeploymentsDeps {
  tokens: TokenService;
  store: DeploymentStore;
}

type Env = { Variables: { requestId: string; apiClaims: ApiClaims } };

export function createDeploymentsRoutes(deps: DeploymentsDeps) {
  const app = new Hono<Env>();

  app.get("/:id", requireScope(deps.tokens, "deployments:read"), (c) => {
    const id = c.req.param("id");
    const found = id.length <= 64 ? deps.store.findDeployment(id) : undefined;
    if (!found) throw new AppError("NOT_FOUND", `no deployment with id ${JSON.stringify(id.slice(0, 64))}`);
    return c.json({ ...toDeploymentJson(found), events: deps.store.listEvents(id).map(toEventJson) });
  });

  return app;
}
