/** docker-modem's internal copy of follow-redirects, which server/engine/docker-client.ts replaces. */
declare module "docker-modem/lib/http.js" {
  import type { ClientRequest, RequestOptions } from "node:http";
  type Request = (options: RequestOptions) => ClientRequest;
  const modemHttp: { http: { request: Request }; https: { request: Request } };
  export default modemHttp;
}
