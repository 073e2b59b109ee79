import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { ApiClaims } from "../../auth/tokens.js";
import type { Deployer } from "../../engine/deployer.js";
import { toDeploymentJson } from "../deployment-json.js";
import * as s from "./schemas.js";

type Env = { Variables: { requestId: string; apiClaims: ApiClaims } };

const error = (description: string) => ({ description, content: { "application/json": { schema: s.ErrorSchema } } });
const security = [{ bearer: [] }];

/**
 * `POST /deployments/{id}/approve` and `/reject` (deployments:write, checked
 * by the API's token middleware): a deployment a service's
 * `deployer.approve=required` holds in `awaiting_approval`. Approved, it is
 * queued and deploys (once the other gates allow); rejected, it ends
 * `rejected`. Anything not awaiting approval is 409.
 */
export function registerApprovalRoutes(app: OpenAPIHono<Env>, deps: { deployer: Pick<Deployer, "approve" | "reject"> }) {
  for (const verb of ["approve", "reject"] as const) {
    app.openapi(
      createRoute({
        method: "post",
        path: `/deployments/{id}/${verb}`,
        security,
        request: { params: s.DeploymentIdParam },
        responses: {
          200: {
            description: verb === "approve" ? "approved: the deployment is queued" : "rejected: the deployment ended rejected",
            content: { "application/json": { schema: s.DeploymentResult } },
          },
          401: error("no or a bad token"),
          403: error("the token lacks deployments:write"),
          404: error("no such deployment"),
          409: error("the deployment is not awaiting approval"),
        },
      }),
      (c) => {
        const { id } = c.req.valid("param");
        const by = c.get("apiClaims").sub;
        const dep = verb === "approve" ? deps.deployer.approve(id, by) : deps.deployer.reject(id, by);
        return c.json({ deployment: toDeploymentJson(dep) }, 200);
      },
    );
  }
}
