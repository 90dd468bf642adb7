/**
 * Every refused launch answers the code of the check that failed and creates nothing: users, courses, enrolments,
 * LTI rows, tokens and nonces are counted before and after each one.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LTI, ROLES, startPlatform, type LaunchMessage, type Platform } from "./lti/platform.ts";
import { authorize, counts, launch, postLaunch, startTool, type Tool } from "./lti/tool.ts";

let tool: Tool;
let platform: Platform;
let platformId: string;

beforeAll(async () => {
  tool = await startTool("lti_refused");
  platform = await startPlatform();
  platformId = await tool.register(platform);
});
afterAll(async () => {
  await platform?.close();
  await tool?.close();
});

const base = (sub = "refused-user") => platform.launchClaims({ sub, contextId: "ctx-refused", roles: [ROLES.instructor] });
const without = (path: string[]) => (c: Record<string, unknown>) => {
  const copy = structuredClone(c);
  let at: Record<string, unknown> = copy;
  for (const k of path.slice(0, -1)) at = at[k] as Record<string, unknown>;
  delete at[path.at(-1)!];
  return copy;
};
const set = (changes: Record<string, unknown>) => (c: Record<string, unknown>) => ({ ...c, ...changes });

/** The launch is refused with `code` (JSON and, for a browser, an HTML page naming it), and nothing was created. */
async function expectRefused(form: Record<string, string>, status: number, code: string) {
  const before = await counts(tool.h);
  const res = await postLaunch(tool, form);
  expect([res.status, (res.json.error as { code?: string } | undefined)?.code]).toEqual([status, code]);
  expect(await counts(tool.h)).toEqual(before);
}

describe("refused launches create nothing", () => {
  const now = () => Math.floor(Date.now() / 1000);
  const cases: [string, LaunchMessage, number, string][] = [
    ["a signature by a key not the platform's", { claims: {}, sign: { otherKey: true, kid: "CURRENT" } }, 401, "LTI_BAD_SIGNATURE"],
    ["an unknown kid", { claims: {}, sign: { otherKey: true } }, 401, "LTI_UNKNOWN_KID"],
    ["no kid", { claims: {}, sign: { kid: null } }, 401, "LTI_UNKNOWN_KID"],
    ["alg none", { claims: {}, sign: { alg: "none" } }, 401, "LTI_ALG_REFUSED"],
    ["HS256 keyed with the public key", { claims: {}, sign: { alg: "HS256" } }, 401, "LTI_ALG_REFUSED"],
    ["another audience", { claims: {}, tamper: set({ aud: "someone-else", azp: undefined }) }, 401, "LTI_WRONG_AUDIENCE"],
    ["several audiences, azp another", { claims: {}, tamper: (c) => ({ ...c, aud: [c.aud, "x"], azp: "x" }) }, 401, "LTI_WRONG_AUDIENCE"],
    ["another issuer", { claims: {}, tamper: set({ iss: "https://other.example" }) }, 401, "LTI_WRONG_ISSUER"],
    ["expired", { claims: {}, tamper: set({ iat: now() - 900, exp: now() - 600 }) }, 401, "LTI_EXPIRED"],
    ["issued in the future", { claims: {}, tamper: set({ iat: now() + 600, exp: now() + 900 }) }, 401, "LTI_BAD_IAT"],
    ["an unknown deployment", { claims: {}, tamper: set({ [`${LTI}deployment_id`]: "not-registered" }) }, 403, "LTI_UNKNOWN_DEPLOYMENT"],
    ["no roles claim", { claims: {}, tamper: without([`${LTI}roles`]) }, 400, "LTI_MISSING_CLAIM"],
    ["no resource link", { claims: {}, tamper: without([`${LTI}resource_link`]) }, 400, "LTI_MISSING_CLAIM"],
    ["no resource link id", { claims: {}, tamper: without([`${LTI}resource_link`, "id"]) }, 400, "LTI_MISSING_CLAIM"],
    ["no context", { claims: {}, tamper: without([`${LTI}context`]) }, 400, "LTI_MISSING_CLAIM"],
    ["no deployment id", { claims: {}, tamper: without([`${LTI}deployment_id`]) }, 400, "LTI_MISSING_CLAIM"],
    ["no sub", { claims: {}, tamper: without(["sub"]) }, 400, "LTI_MISSING_CLAIM"],
    ["no nonce", { claims: {}, tamper: without(["nonce"]) }, 400, "LTI_MISSING_CLAIM"],
    [
      "another message type",
      { claims: {}, tamper: set({ [`${LTI}message_type`]: "LtiSubmissionReviewRequest" }) },
      400,
      "LTI_UNSUPPORTED_MESSAGE",
    ],
    ["version 1.1", { claims: {}, tamper: set({ [`${LTI}version`]: "1.1.0" }) }, 400, "LTI_BAD_VERSION"],
    [
      "a parent (Mentor) only",
      { claims: {}, tamper: set({ [`${LTI}roles`]: ["http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"] }) },
      403,
      "LTI_NO_COURSE_ROLE",
    ],
  ];
  it.each(cases)("%s", async (_, msg, status, code) => {
    // "CURRENT": the platform's own kid on a token signed by another key.
    const sign = msg.sign?.kid === "CURRENT" ? { ...msg.sign, kid: platform.key.kid } : msg.sign;
    const { form } = await authorize(tool, platform, { ...msg, sign, claims: base() });
    await expectRefused(form, status, code);
  });

  it("a deep-linking request without its settings", async () => {
    const claims = platform.launchClaims({ sub: "dl-refused", contextId: "ctx-refused", roles: [ROLES.instructor], deepLinking: {} });
    const { form } = await authorize(tool, platform, {
      claims,
      tamper: without([`https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings`]),
    });
    await expectRefused(form, 400, "LTI_MISSING_CLAIM");
  });

  it("a reused state, a made-up state, and a state of another browser", async () => {
    const ok = await authorize(tool, platform, { claims: base("state-user") });
    expect((await postLaunch(tool, ok.form)).status).toBe(200);
    await expectRefused(ok.form, 401, "LTI_STATE_MISMATCH"); // the same form posted again
    const other = await authorize(tool, platform, { claims: base("state-user-2") });
    await expectRefused({ ...other.form, state: "made-up-state" }, 401, "LTI_STATE_MISMATCH");
    const third = await authorize(tool, platform, { claims: base("state-user-3") });
    const before = await counts(tool.h);
    const res = await postLaunch(tool, third.form, { cookie: `lti_state_${other.form.state}=${other.form.state}` });
    expect([res.status, (res.json.error as { code: string }).code]).toEqual([401, "LTI_STATE_MISMATCH"]);
    expect(await counts(tool.h)).toEqual(before);
  });

  it("a replayed id_token under a fresh state (nonce seen before), and a token of another login (nonce mismatch)", async () => {
    const first = await authorize(tool, platform, { claims: base("replay-user") });
    expect((await postLaunch(tool, first.form)).status).toBe(200);
    const fresh = await authorize(tool, platform, { claims: base("replay-user") });
    await expectRefused({ id_token: first.form.id_token!, state: fresh.form.state! }, 401, "LTI_NONCE_REPLAYED");
    const a = await authorize(tool, platform, { claims: base("mix-user") });
    const b = await authorize(tool, platform, { claims: base("mix-user") });
    await expectRefused({ id_token: a.form.id_token!, state: b.form.state! }, 401, "LTI_NONCE_MISMATCH");
  });

  it("a browser gets an HTML page that names the failed check", async () => {
    const { form } = await authorize(tool, platform, { claims: base(), sign: { alg: "none" } });
    const res = await postLaunch(tool, form, { json: false });
    expect(res.status).toBe(401);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(res.text).toContain("<code>LTI_ALG_REFUSED</code>");
    expect(res.headers.get("x-frame-options")).toBeNull(); // shown inside the LMS's iframe
  });

  it("a disabled platform: login refused, and a launch already under way refused", async () => {
    const p2 = await startPlatform();
    const id = await tool.register(p2);
    const underWay = await authorize(tool, p2, { claims: p2.launchClaims({ sub: "late", contextId: "ctx-disabled" }) });
    expect((await tool.h.call("DELETE", `/v1/lti/platforms/${id}`, { token: tool.world.adminToken })).statusCode).toBe(204);
    await expectRefused(underWay.form, 403, "LTI_PLATFORM_DISABLED");
    await expect(authorize(tool, p2, { claims: p2.launchClaims({ sub: "late" }) })).rejects.toThrow(/403.*LTI_PLATFORM_DISABLED/);
    await p2.close();
  });
});

describe("the platform's JWKS", () => {
  let proxy: Server;
  let failNext = 0;
  let hits = 0;
  beforeAll(async () => {
    // Stands between the tool and the emulator's /jwks, failing on demand.
    proxy = createServer(async (_req, res) => {
      hits++;
      if (failNext > 0) {
        failNext--;
        return void res.writeHead(503).end("down");
      }
      res.writeHead(200, { "content-type": "application/json" }).end(await (await fetch(`${platform.url}/jwks`)).text());
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
  });
  afterAll(() => new Promise((r) => proxy.close(r)));

  it("is retried when a fetch fails, then cached; unreachable for good, the launch is refused and nothing created", async () => {
    const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/jwks`;
    const p3 = await startPlatform();
    // Same keys, another client id and JWKS address: the emulator's /jwks reached through the proxy.
    p3.keys = platform.keys;
    const id = await tool.register(p3, { jwksUrl: url });
    failNext = 2;
    const ok = await launch(tool, p3, { claims: p3.launchClaims({ sub: "jwks-user", contextId: "ctx-jwks" }) });
    expect([ok.status, hits]).toEqual([200, 3]);
    expect((await launch(tool, p3, { claims: p3.launchClaims({ sub: "jwks-user", contextId: "ctx-jwks" }) })).status).toBe(200);
    expect(hits).toBe(3); // the key set came from the cache

    await tool.h.call("PATCH", `/v1/lti/platforms/${id}`, { token: tool.world.adminToken, body: { jwksUrl: "http://127.0.0.1:9/jwks" } });
    const { form } = await authorize(tool, p3, { claims: p3.launchClaims({ sub: "jwks-user-2", contextId: "ctx-jwks" }) });
    await expectRefused(form, 502, "LTI_JWKS_UNAVAILABLE");
    expect(platformId).not.toBe(id);
    await p3.close();
  });
});
