/**
 * The platform emulator (tests/lti/platform.ts) checked on its own, against a stand-in "tool" made
 * here from jose alone, so the LTI tests can trust what it records.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createRemoteJWKSet, exportJWK, generateKeyPair, jwtVerify, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MEDIA, ROLES, SCOPES, startPlatform, type Platform } from "./lti/platform.ts";

let platform: Platform;
let toolServer: Server;
let toolUrl = "";
let toolKey: CryptoKey;

beforeAll(async () => {
  const { privateKey, publicKey } = await generateKeyPair("RS256");
  toolKey = privateKey;
  const jwk = { ...(await exportJWK(publicKey)), kid: "tool-1", alg: "RS256", use: "sig" };
  // The stand-in tool: a JWKS, and a login that redirects to the platform's /auth like a tool must.
  toolServer = createServer((req, res) => {
    if (req.url === "/jwks") return void res.end(JSON.stringify({ keys: [jwk] }));
    let raw = "";
    req.on("data", (c) => (raw += c));
    req.on("end", () => {
      const p = new URLSearchParams(raw);
      const q = new URLSearchParams({
        scope: "openid",
        response_type: "id_token",
        response_mode: "form_post",
        prompt: "none",
        client_id: p.get("client_id")!,
        redirect_uri: p.get("target_link_uri")!,
        login_hint: p.get("login_hint")!,
        lti_message_hint: p.get("lti_message_hint")!,
        state: "state-1",
        nonce: "nonce-1",
      });
      res.writeHead(302, { location: `${platform.url}/auth?${q}` }).end();
    });
  });
  await new Promise<void>((r) => toolServer.listen(0, "127.0.0.1", r));
  toolUrl = `http://127.0.0.1:${(toolServer.address() as AddressInfo).port}`;
  platform = await startPlatform();
  platform.connectTool({ jwksUrl: `${toolUrl}/jwks` });
});
afterAll(async () => {
  await platform.close();
  toolServer.closeAllConnections();
  await new Promise((r) => toolServer.close(r));
});

const assertion = (aud = `${platform.url}/token`) =>
  new SignJWT({ jti: crypto.randomUUID() })
    .setProtectedHeader({ alg: "RS256", kid: "tool-1" })
    .setIssuer(platform.clientId)
    .setSubject(platform.clientId)
    .setAudience(aud)
    .setIssuedAt()
    .setExpirationTime("5m")
    .sign(toolKey);

async function serviceToken(scopes: string[], aud?: string) {
  const res = await fetch(`${platform.url}/token`, {
    method: "POST",
    body: new URLSearchParams({
      grant_type: "client_credentials",
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: await assertion(aud),
      scope: scopes.join(" "),
    }),
  });
  return { status: res.status, body: await res.json() };
}

describe("platform emulator", () => {
  it("drives login → authorize and signs the id_token with a key of its JWKS", async () => {
    const claims = platform.launchClaims({ sub: "u-1", roles: [ROLES.instructor], contextId: "c-9" });
    const { url, form } = await platform.startLaunch({ loginUrl: `${toolUrl}/login`, launchUrl: `${toolUrl}/launch` }, { claims });
    expect(url).toBe(`${toolUrl}/launch`);
    expect(form.state).toBe("state-1");
    const jwks = createRemoteJWKSet(new URL(`${platform.url}/jwks`));
    const { payload, protectedHeader } = await jwtVerify(form.id_token!, jwks, { issuer: platform.issuer, audience: platform.clientId });
    expect(protectedHeader.alg).toBe("RS256");
    expect(payload.nonce).toBe("nonce-1");
    expect(payload["https://purl.imsglobal.org/spec/lti/claim/context"]).toMatchObject({ id: "c-9" });
    expect(payload["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"]).toMatchObject({
      lineitems: `${platform.url}/contexts/c-9/lineitems`,
    });
  });

  it("refuses an authorization request without a nonce", async () => {
    const res = await fetch(`${platform.url}/auth?scope=openid&response_type=id_token&client_id=${platform.clientId}&state=s`);
    expect(res.status).toBe(400);
  });

  it("issues service tokens only for a client assertion signed by the tool's key with the token URL as audience", async () => {
    const ok = await serviceToken([SCOPES.score, SCOPES.lineItem]);
    expect(ok.status).toBe(200);
    expect(ok.body.scope.split(" ").sort()).toEqual([SCOPES.lineItem, SCOPES.score].sort());
    const bad = await serviceToken([SCOPES.score], "https://elsewhere.example/token");
    expect(bad.status).toBe(401);
  });

  it("AGS: creates and filters line items, records scores, fails the next N on demand", async () => {
    const { body: tok } = await serviceToken([SCOPES.score, SCOPES.lineItem]);
    const auth = { authorization: `Bearer ${tok.access_token}` };
    const created = await fetch(`${platform.url}/contexts/c-1/lineitems`, {
      method: "POST",
      headers: { ...auth, "content-type": MEDIA.lineItem },
      body: JSON.stringify({ label: "HW 1", scoreMaximum: 10, resourceId: "a-1" }),
    });
    expect(created.status).toBe(201);
    const li = await created.json();
    const list = await fetch(`${platform.url}/contexts/c-1/lineitems?resource_id=a-1`, { headers: { ...auth, accept: MEDIA.lineItems } });
    expect(await list.json()).toEqual([li]);
    const post = (body: object) =>
      fetch(`${li.id}/scores`, { method: "POST", headers: { ...auth, "content-type": MEDIA.score }, body: JSON.stringify(body) });
    const score = {
      userId: "u-1",
      scoreGiven: 7,
      scoreMaximum: 10,
      activityProgress: "Completed",
      gradingProgress: "FullyGraded",
      timestamp: new Date().toISOString(),
    };
    platform.failNextScores(1, 429, { retryAfter: "1" });
    const limited = await post(score);
    expect([limited.status, limited.headers.get("retry-after")]).toEqual([429, "1"]);
    expect((await post(score)).status).toBe(200);
    expect((await post({ ...score, activityProgress: "Done" })).status).toBe(400);
    expect(platform.state.scores.map((s) => s.body)).toEqual([score]);
    const noScope = await serviceToken([SCOPES.memberships]);
    const refused = await fetch(`${li.id}/scores`, {
      method: "POST",
      headers: { authorization: `Bearer ${noScope.body.access_token}`, "content-type": MEDIA.score },
      body: JSON.stringify(score),
    });
    expect(refused.status).toBe(403);
  });

  it("NRPS: pages memberships with Link rel=next", async () => {
    platform.setMembers(
      "c-2",
      [1, 2, 3].map((i) => ({ user_id: `m-${i}`, roles: [ROLES.learner], name: `M ${i}`, email: `m${i}@x.org` })),
      2,
    );
    const { body: tok } = await serviceToken([SCOPES.memberships]);
    const headers = { authorization: `Bearer ${tok.access_token}`, accept: MEDIA.memberships };
    const first = await fetch(`${platform.url}/contexts/c-2/memberships`, { headers });
    const next = /<([^>]+)>;\s*rel="next"/.exec(first.headers.get("link") ?? "")?.[1];
    expect((await first.json()).members.map((m: { user_id: string }) => m.user_id)).toEqual(["m-1", "m-2"]);
    const second = await fetch(next!, { headers });
    expect(second.headers.get("link")).toBeNull();
    expect((await second.json()).members.map((m: { user_id: string }) => m.user_id)).toEqual(["m-3"]);
  });
});
