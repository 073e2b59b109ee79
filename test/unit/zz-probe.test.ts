import { it } from "vitest";
import { createHmac } from "node:crypto";
import { createTokenService } from "/work/main/server/auth/tokens.js";
const S = "x".repeat(40);
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
const tok = (p: object) => { const i = `${b64({alg:"HS256"})}.${b64(p)}`; return `${i}.${createHmac("sha256", S).update(i).digest("base64url")}`; };
it("p", async () => {
  const t = createTokenService({ secret: S, dockerHubRegistry: "docker.io" });
  for (const p of [{aud:"deployer:webhook", repos:"x", sub:"a"}, {aud:"deployer:webhook", repos:["x"]}, {aud:"deployer:webhook", sub:"a", repos:["Not A"]}, {aud:"deployer:webhook", sub:"a", repos:["a"], exp:"x"}, {aud:"deployer:webhook", sub:"a", repos:["a"], nbf: 9999999999}])
    await t.verifyWebhookToken(tok(p)).catch(e => console.log(e.reason, "|", e.message));
});
