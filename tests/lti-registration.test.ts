/**
 * Registering platforms (admin API and LTI Dynamic Registration against the emulator), the tool's keys, JWKS and
 * rotation, and the Canvas configuration JSON.
 */
import { createRemoteJWKSet, calculateJwkThumbprint, type JWK } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signingKey } from "../src/lti/keys.ts";
import { urlProblem } from "../src/lti/platforms.ts";
import { ROLES, SCOPES, startPlatform, type Platform } from "./lti/platform.ts";
import { launch, startTool, type Tool } from "./lti/tool.ts";

let tool: Tool;
let admin: string;
const platforms: Platform[] = [];
const newPlatform = async (opts: Parameters<typeof startPlatform>[0] = {}) => {
  const p = await startPlatform(opts);
  platforms.push(p);
  return p;
};

beforeAll(async () => {
  tool = await startTool("lti_registration");
  admin = tool.world.adminToken;
});
afterAll(async () => {
  await Promise.all(platforms.map((p) => p.close()));
  await tool?.close();
});

describe("tool keys", () => {
  it("makes one key on first need even when asked concurrently, and publishes only its public members", async () => {
    const answers = await Promise.all(Array.from({ length: 6 }, () => fetch(`${tool.base}/lti/jwks.json`).then((r) => r.json())));
    expect(await tool.h.db.ltiKey.count()).toBe(1);
    const [jwks] = answers as { keys: JWK[] }[];
    expect(jwks!.keys).toHaveLength(1);
    const key = jwks!.keys[0]!;
    expect(Object.keys(key).sort()).toEqual(["alg", "e", "kid", "kty", "n", "use"]);
    expect([key.kty, key.alg, key.use, key.e]).toEqual(["RSA", "RS256", "sig", "AQAB"]);
    expect(Buffer.from(key.n!, "base64url").length * 8).toBe(2048);
    expect(key.kid).toBe(await calculateJwkThumbprint(key));
    expect(JSON.stringify(answers)).not.toMatch(/"(d|p|q|dp|dq|qi)":/);
  });

  it("rotation: the new key signs, the old one stays published for the grace period, then drops out", async () => {
    const old = (await signingKey(tool.h.db)).kid;
    const rotated = await tool.h.call("POST", "/v1/lti/keys/rotate", { token: admin, body: { graceHours: 1 } });
    expect(rotated.statusCode).toBe(201);
    const { kid, retiring } = rotated.json();
    expect(retiring).toEqual([{ kid: old, retiredAt: expect.any(String) }]);
    expect(Math.abs(Date.parse(retiring[0].retiredAt) - Date.now() - 3_600_000)).toBeLessThan(60_000);
    expect((await signingKey(tool.h.db)).kid).toBe(kid);
    const jwks = await (await fetch(`${tool.base}/lti/jwks.json`)).json();
    expect(jwks.keys.map((k: JWK) => k.kid)).toEqual([kid, old]);
    // A platform's jose key set finds both, by kid.
    const remote = createRemoteJWKSet(new URL(`${tool.base}/lti/jwks.json`));
    for (const k of [kid, old]) expect(await remote({ alg: "RS256", kid: k })).toBeTruthy();
    const listed = await tool.h.call("GET", "/v1/lti/keys", { token: admin });
    expect(listed.json().map((k: { kid: string; status: string }) => [k.kid, k.status])).toEqual([
      [kid, "signing"],
      [old, "published"],
    ]);

    const again = await tool.h.call("POST", "/v1/lti/keys/rotate", { token: admin, body: { graceHours: 0 } });
    const newest = again.json().kid;
    const after = await (await fetch(`${tool.base}/lti/jwks.json`)).json();
    expect(after.keys.map((k: JWK) => k.kid)).toEqual([newest]);
    const statuses = (await tool.h.call("GET", "/v1/lti/keys", { token: admin })).json().map((k: { status: string }) => k.status);
    expect(statuses).toEqual(["signing", "retired", "retired"]);
  });
});

describe("platforms", () => {
  it("registers, lists, refuses a duplicate and bad URLs (each field named), changes deployments, disables", async () => {
    const p = await newPlatform();
    const res = await tool.h.call("POST", "/v1/lti/platforms", { token: admin, body: { ...p.registration(), name: "Emulator" } });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ ...p.registration(), name: "Emulator", registeredBy: "api", disabledAt: null });
    const dup = await tool.h.call("POST", "/v1/lti/platforms", { token: admin, body: p.registration() });
    expect([dup.statusCode, dup.json().error.code]).toEqual([409, "PLATFORM_EXISTS"]);
    const bad = await tool.h.call("POST", "/v1/lti/platforms", {
      token: admin,
      body: { ...p.registration(), clientId: "other", jwksUrl: "ftp://keys.example/jwks", authLoginUrl: "not a url" },
    });
    expect([bad.statusCode, bad.json().error.code]).toEqual([422, "INVALID_PLATFORM"]);
    expect(bad.json().error.details).toEqual([
      { field: "authLoginUrl", message: "must be an absolute URL" },
      { field: "jwksUrl", message: "must be an https URL" },
    ]);
    const list = await tool.h.call("GET", "/v1/lti/platforms", { token: admin });
    expect(list.json().map((x: { id: string }) => x.id)).toContain(res.json().id);

    const patched = await tool.h.call("PATCH", `/v1/lti/platforms/${res.json().id}`, {
      token: admin,
      body: { deploymentIds: [p.deploymentId, "second"] },
    });
    expect(patched.json().deploymentIds).toEqual([p.deploymentId, "second"]);
    expect((await tool.h.call("DELETE", `/v1/lti/platforms/${res.json().id}`, { token: admin })).statusCode).toBe(204);
    const row = await tool.h.db.ltiPlatform.findUniqueOrThrow({ where: { id: res.json().id } });
    expect(row.disabledAt).toBeInstanceOf(Date);
    const back = await tool.h.call("PATCH", `/v1/lti/platforms/${res.json().id}`, { token: admin, body: { enabled: true } });
    expect(back.json().disabledAt).toBeNull();
  });

  it("https is required in production, except for this machine", () => {
    const prod = { NODE_ENV: "production" as const };
    expect(urlProblem("http://lms.example.edu/jwks", prod)).toMatch(/must use https/);
    expect(urlProblem("http://127.0.0.1:8080/jwks", prod)).toBeNull();
    expect(urlProblem("http://localhost/jwks", prod)).toBeNull();
    expect(urlProblem("https://lms.example.edu/jwks", prod)).toBeNull();
    expect(urlProblem("http://lms.example.edu/jwks", { NODE_ENV: "development" })).toBeNull();
  });
});

describe("tool configuration and dynamic registration", () => {
  it("/lti/config.json is a Canvas developer key configuration", async () => {
    const c = await (await fetch(`${tool.base}/lti/config.json`)).json();
    expect(c).toMatchObject({
      title: "Autograder",
      oidc_initiation_url: `${tool.base}/lti/login`,
      target_link_uri: `${tool.base}/lti/launch`,
      public_jwk_url: `${tool.base}/lti/jwks.json`,
      custom_fields: { canvas_assignment_id: "$Canvas.assignment.id" },
    });
    expect(c.scopes).toEqual(expect.arrayContaining([SCOPES.lineItem, SCOPES.score, SCOPES.resultRead, SCOPES.memberships]));
    const ext = c.extensions[0];
    expect([ext.platform, ext.privacy_level, ext.domain]).toEqual(["canvas.instructure.com", "public", new URL(tool.base).host]);
    expect(ext.settings.placements).toContainEqual(
      expect.objectContaining({ placement: "assignment_selection", message_type: "LtiDeepLinkingRequest" }),
    );
  });

  it("registers with the platform's registration endpoint, stores the answer, and the platform can launch at once", async () => {
    const p = await newPlatform();
    const params = p.dynamicRegistrationParams();
    const res = await fetch(`${tool.base}/lti/register?${new URLSearchParams(params)}`, { headers: { accept: "text/html" } });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('postMessage({subject: "org.imsglobal.lti.close"}, "*")');
    expect(res.headers.get("cross-origin-opener-policy")).toBe("unsafe-none");
    expect(res.headers.get("x-frame-options")).toBeNull();
    const nonce = /script-src 'nonce-([^']+)'/.exec(res.headers.get("content-security-policy")!)![1];
    expect(html).toContain(`<script nonce="${nonce}">`);
    const [reg] = p.state.registrations;
    expect(reg!.token).toBe(params.registration_token);
    expect(reg!.body).toMatchObject({
      application_type: "web",
      response_types: ["id_token"],
      grant_types: ["implicit", "client_credentials"],
      initiate_login_uri: `${tool.base}/lti/login`,
      redirect_uris: [`${tool.base}/lti/launch`],
      jwks_uri: `${tool.base}/lti/jwks.json`,
      token_endpoint_auth_method: "private_key_jwt",
      "https://purl.imsglobal.org/spec/lti-tool-configuration": {
        domain: new URL(tool.base).host,
        target_link_uri: `${tool.base}/lti/launch`,
        claims: expect.arrayContaining(["sub", "email", "name"]),
        messages: [expect.objectContaining({ type: "LtiResourceLinkRequest" }), expect.objectContaining({ type: "LtiDeepLinkingRequest" })],
      },
    });
    expect(String(reg!.body.scope).split(" ").sort()).toEqual(Object.values(SCOPES).sort());
    const stored = await tool.h.db.ltiPlatform.findUniqueOrThrow({
      where: { issuer_clientId: { issuer: p.issuer, clientId: reg!.clientId } },
    });
    expect(stored).toMatchObject({
      deploymentIds: [reg!.deploymentId],
      authLoginUrl: `${p.url}/auth`,
      jwksUrl: `${p.url}/jwks`,
      registeredBy: "dynamic",
    });

    const launched = await launch(tool, p, { claims: p.launchClaims({ sub: "after-dr", roles: [ROLES.learner], contextId: "ctx-dr" }) });
    expect([launched.status, launched.json.role]).toEqual([200, "student"]);
  });

  it("refuses a missing configuration URL, a rejected token, a foreign issuer and an unreachable platform; stores nothing", async () => {
    const before = await tool.h.db.ltiPlatform.count();
    const register = async (q: Record<string, string>) => {
      const r = await fetch(`${tool.base}/lti/register?${new URLSearchParams(q)}`, { headers: { accept: "application/json" } });
      return [r.status, (await r.json()).error?.code];
    };
    expect(await register({})).toEqual([400, "LTI_REGISTRATION_PARAMETER"]);
    const p = await newPlatform();
    const params = p.dynamicRegistrationParams();
    expect(await register({ ...params, registration_token: "wrong" })).toEqual([400, "LTI_REGISTRATION_REFUSED"]);
    const foreign = await newPlatform({ issuer: "https://lms.other.example" });
    expect(await register(foreign.dynamicRegistrationParams())).toEqual([400, "LTI_REGISTRATION_ISSUER"]);
    expect(await register({ openid_configuration: "http://127.0.0.1:9/.well-known/openid-configuration" })).toEqual([
      400,
      "LTI_REGISTRATION_UNREACHABLE",
    ]);
    expect(await tool.h.db.ltiPlatform.count()).toBe(before);
    expect(p.state.registrations).toHaveLength(0);
  });

  it("a dynamic registration that came without a deployment id learns it from the first launch", async () => {
    const p = await newPlatform();
    const row = await tool.h.db.ltiPlatform.create({ data: { ...p.registration(), deploymentIds: [], registeredBy: "dynamic" } });
    p.connectTool({ jwksUrl: `${tool.base}/lti/jwks.json` });
    const res = await launch(tool, p, { claims: p.launchClaims({ sub: "tofu", contextId: "ctx-tofu" }) });
    expect(res.status).toBe(200);
    expect((await tool.h.db.ltiPlatform.findUniqueOrThrow({ where: { id: row.id } })).deploymentIds).toEqual([p.deploymentId]);
    p.deploymentId = "another-deployment";
    const other = await launch(tool, p, { claims: p.launchClaims({ sub: "tofu", contextId: "ctx-tofu" }) });
    expect([other.status, (other.json.error as { code: string }).code]).toEqual([403, "LTI_UNKNOWN_DEPLOYMENT"]);
  });
});
