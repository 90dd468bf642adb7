/**
 * An LTI 1.3 Advantage platform (an LMS) for end-to-end tests. It signs with its OWN keys and
 * never imports the tool's code (src/lti/*), so the tests check the protocol, not the tool
 * against itself. Endpoints: /jwks, /auth (OIDC), /token, AGS, NRPS (platform-services.ts),
 * /deep-link-return, dynamic registration (/.well-known/openid-configuration, /register).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createRemoteJWKSet, exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type JWK, type JWTPayload } from "jose";
import { deepLinkReturn, openidConfiguration, register } from "./platform-flows.ts";
import { handleServices, newServiceState, type LineItem, type Member, type ServiceState } from "./platform-services.ts";

export { MEDIA, type LineItem, type Member } from "./platform-services.ts";

export const LTI = "https://purl.imsglobal.org/spec/lti/claim/";
export const AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint";
export const NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice";
export const DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/";
export const SCOPES = {
  lineItem: "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
  lineItemRead: "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
  resultRead: "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
  score: "https://purl.imsglobal.org/spec/lti-ags/scope/score",
  memberships: "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
};
export const ROLES = {
  instructor: "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
  learner: "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner",
  ta: "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant",
  admin: "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator",
};

type Key = { kid: string; privateKey: CryptoKey; publicJwk: JWK };
async function newKey(): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  const kid = `platform-${randomBytes(6).toString("hex")}`;
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" } };
}

/** How /auth (or idToken) signs: the current key by default; hostile variants for negative tests. */
export interface SignOptions {
  /** "none" makes an unsigned token; "HS256" signs with `secret` (e.g. the public key bytes). */
  alg?: "RS256" | "RS512" | "HS256" | "none";
  /** Sign with a key that is not in the JWKS. */
  otherKey?: boolean;
  /** Override the header's kid (null: no kid at all). */
  kid?: string | null;
  secret?: Uint8Array;
}

/** A launch the platform will answer at /auth: its claims (nonce, iat, exp, aud… are filled in there). */
export interface LaunchMessage {
  claims: Record<string, unknown>;
  /** Change the final claims (after nonce/exp are set): remove a claim, break the audience, expire it… */
  tamper?: (claims: Record<string, unknown>) => Record<string, unknown>;
  sign?: SignOptions;
}

export interface DeepLinked {
  contextId: string;
  resourceLinkId: string;
  title?: string;
  url?: string;
  custom: Record<string, string>;
  /** The line item made from the content item's `lineItem`, if it had one. */
  lineItemId?: string;
}

export interface Captured<T> {
  at: Date;
  body: T;
}

export interface PlatformState extends ServiceState {
  authRequests: Record<string, string>[];
  /**
   * Deep-linking responses posted back. For a verified one, each ltiResourceLink content item became a resource link
   * in the course that asked (found by the `data` echoed), and its `lineItem` a line item tied to it, as LMSs do.
   */
  deepLinkResponses: { jwt: string; payload: JWTPayload | null; verified: boolean; error?: string; links?: DeepLinked[] }[];
  registrations: { body: Record<string, unknown>; token: string | undefined; clientId: string; deploymentId: string }[];
}

export type ToolCaller = (req: { method: "GET" | "POST"; url: string; form?: Record<string, string> }) => Promise<{
  status: number;
  location: string | undefined;
  body: string;
}>;

/** Calls a tool listening on a real port (no redirects followed: the test looks at each step). */
export const httpCaller: ToolCaller = async ({ method, url, form }) => {
  const res = await fetch(url, { method, redirect: "manual", body: form ? new URLSearchParams(form) : undefined });
  return { status: res.status, location: res.headers.get("location") ?? undefined, body: await res.text() };
};

export class Platform {
  url = "";
  issuer = "";
  clientId = `client-${randomBytes(4).toString("hex")}`;
  deploymentId = "deployment-1";
  /** The tool's JWKS (for client assertions and deep-link responses); set by connectTool or dynamic registration. */
  toolJwksUrl: string | undefined;
  /** redirect_uris the tool registered; when set, /auth refuses others. */
  redirectUris: string[] | undefined;
  keys: Key[] = [];
  private other!: Key;
  private server!: Server;
  /** Deep-linking requests by their `data`, so a response (which echoes it) lands in the course that asked. */
  deepLinkContexts = new Map<string, string>();
  private messages = new Map<string, LaunchMessage>();
  /** Registration tokens handed out by dynamicRegistrationParams (platform-flows.ts checks them). */
  registrationTokens = new Set<string>();
  private toolJwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  state: PlatformState = { ...newServiceState(), authRequests: [], deepLinkResponses: [], registrations: [] };

  get key(): Key {
    return this.keys[0]!;
  }

  async start(): Promise<this> {
    this.keys = [await newKey()];
    this.other = await newKey();
    this.server = createServer((req, res) => void this.route(req, res));
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    this.issuer ||= this.url;
    return this;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  /** The next `count` score POSTs are answered `status` (503, 429 with Retry-After, 400…) and not recorded as scores. */
  failNextScores(count: number, status: number, opts: { retryAfter?: string; body?: unknown } = {}): void {
    this.state.failScores = { count, status, ...opts };
  }

  /** The roster NRPS answers for a context, in pages of `pageSize`. */
  setMembers(contextId: string, members: Member[], pageSize?: number): void {
    this.state.members.set(contextId, members);
    if (pageSize) this.state.memberPageSize = pageSize;
  }

  /** Line items of a context (the platform's course). */
  lineItemsOf(contextId: string): LineItem[] {
    return this.state.lineItems.get(contextId) ?? [];
  }

  /** What an admin registers with the tool (POST /v1/lti/platforms). */
  registration() {
    return {
      issuer: this.issuer,
      clientId: this.clientId,
      deploymentIds: [this.deploymentId],
      authLoginUrl: `${this.url}/auth`,
      authTokenUrl: `${this.url}/token`,
      jwksUrl: `${this.url}/jwks`,
    };
  }

  connectTool(opts: { jwksUrl: string; redirectUris?: string[] }): void {
    this.toolJwksUrl = opts.jwksUrl;
    this.toolJwks = createRemoteJWKSet(new URL(opts.jwksUrl), { cacheMaxAge: 0, cooldownDuration: 0 });
    this.redirectUris = opts.redirectUris;
  }

  /** The tool's key set, fetched over HTTP like a real platform does. */
  toolKeys() {
    if (!this.toolJwks) throw new Error("connectTool() first: the platform does not know the tool's JWKS URL");
    return this.toolJwks;
  }

  /** A new signing key; the old one stays in the JWKS unless `dropOld` (then old tokens fail). */
  async rotateKey(opts: { dropOld?: boolean } = {}): Promise<void> {
    const fresh = await newKey();
    this.keys = opts.dropOld ? [fresh] : [fresh, ...this.keys];
  }

  /** Signs any claims as this platform would, or in a hostile way (see SignOptions). */
  async idToken(claims: Record<string, unknown>, opts: SignOptions = {}): Promise<string> {
    const alg = opts.alg ?? "RS256";
    if (alg === "none") return new UnsecuredJWT(claims).encode();
    const key = opts.otherKey ? this.other : this.key;
    const header: { alg: string; typ: string; kid?: string } = { alg, typ: "JWT" };
    if (opts.kid !== null) header.kid = opts.kid ?? key.kid;
    const secret = alg === "HS256" ? (opts.secret ?? new TextEncoder().encode(JSON.stringify(this.key.publicJwk))) : key.privateKey;
    return new SignJWT(claims).setProtectedHeader(header).sign(secret);
  }

  /** Claims of a resource link launch (or deep linking request) with AGS and NRPS pointing here. */
  launchClaims(o: {
    sub: string;
    roles?: string[];
    contextId?: string;
    resourceLinkId?: string;
    deepLinking?: { data?: string };
    name?: string;
    email?: string;
    custom?: Record<string, string>;
    targetLinkUri?: string;
    lineItemId?: string;
    agsScopes?: string[];
    nrps?: boolean;
  }): Record<string, unknown> {
    const contextId = o.contextId ?? "course-1";
    const claims: Record<string, unknown> = {
      sub: o.sub,
      name: o.name ?? `User ${o.sub}`,
      email: o.email ?? `${o.sub}@lms.example.org`,
      [`${LTI}message_type`]: o.deepLinking ? "LtiDeepLinkingRequest" : "LtiResourceLinkRequest",
      [`${LTI}version`]: "1.3.0",
      [`${LTI}deployment_id`]: this.deploymentId,
      [`${LTI}target_link_uri`]: o.targetLinkUri ?? "",
      [`${LTI}roles`]: o.roles ?? [ROLES.learner],
      [`${LTI}context`]: {
        id: contextId,
        label: contextId.toUpperCase(),
        title: `Course ${contextId}`,
        type: ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"],
      },
      [`${LTI}custom`]: o.custom ?? {},
      [AGS_CLAIM]: {
        scope: o.agsScopes ?? [SCOPES.lineItem, SCOPES.resultRead, SCOPES.score],
        lineitems: `${this.url}/contexts/${contextId}/lineitems`,
        ...(o.lineItemId ? { lineitem: `${this.url}/lineitems/${o.lineItemId}` } : {}),
      },
    };
    if (o.nrps !== false)
      claims[NRPS_CLAIM] = { context_memberships_url: `${this.url}/contexts/${contextId}/memberships`, service_versions: ["2.0"] };
    if (o.deepLinking) {
      this.deepLinkContexts.set(o.deepLinking.data ?? "platform-opaque-data", contextId);
      claims[`${DL_CLAIM}deep_linking_settings`] = {
        deep_link_return_url: `${this.url}/deep-link-return`,
        accept_types: ["ltiResourceLink"],
        accept_presentation_document_targets: ["iframe", "window"],
        accept_multiple: false,
        auto_create: true,
        data: o.deepLinking.data ?? "platform-opaque-data",
      };
    } else {
      claims[`${LTI}resource_link`] = { id: o.resourceLinkId ?? "link-1", title: "Problem set" };
    }
    return claims;
  }

  /** The third-party login initiation a platform sends the tool; `message` is what /auth will sign for it. */
  loginParams(message: LaunchMessage, targetLinkUri: string): Record<string, string> {
    const hint = randomUUID();
    this.messages.set(hint, message);
    return {
      iss: this.issuer,
      login_hint: String(message.claims.sub ?? "anonymous"),
      target_link_uri: targetLinkUri,
      lti_message_hint: hint,
      client_id: this.clientId,
      lti_deployment_id: this.deploymentId,
    };
  }

  /**
   * Drives a browser through login → authorize: POSTs the login initiation to the tool, follows its
   * redirect to /auth, and returns the form a browser would auto-post to the tool (id_token + state).
   */
  async startLaunch(
    tool: { loginUrl: string; launchUrl: string; call?: ToolCaller },
    message: LaunchMessage,
  ): Promise<{ url: string; form: Record<string, string> }> {
    const call = tool.call ?? httpCaller;
    const login = await call({ method: "POST", url: tool.loginUrl, form: this.loginParams(message, tool.launchUrl) });
    if (login.status !== 302 || !login.location) throw new Error(`tool login answered ${login.status}: ${login.body}`);
    const res = await fetch(login.location, { headers: { accept: "application/json" } });
    const body = await res.json();
    if (res.status !== 200) throw new Error(`platform /auth refused: ${JSON.stringify(body)}`);
    return body as { url: string; form: Record<string, string> };
  }

  private async authorize(q: URLSearchParams): Promise<[number, unknown]> {
    const p = Object.fromEntries(q);
    this.state.authRequests.push(p);
    const missing = ["scope", "response_type", "client_id", "redirect_uri", "login_hint", "state", "nonce"].filter((k) => !p[k]);
    if (missing.length) return [400, { error: "invalid_request", error_description: `missing ${missing.join(", ")}` }];
    if (p.scope !== "openid" || p.response_type !== "id_token")
      return [400, { error: "invalid_request", error_description: "scope/response_type" }];
    if (p.response_mode !== "form_post" || p.prompt !== "none")
      return [400, { error: "invalid_request", error_description: "response_mode/prompt" }];
    if (p.client_id !== this.clientId) return [400, { error: "unauthorized_client" }];
    if (this.redirectUris && !this.redirectUris.includes(p.redirect_uri!)) return [400, { error: "invalid_request_uri" }];
    const message = p.lti_message_hint ? this.messages.get(p.lti_message_hint) : undefined;
    if (!message || String(message.claims.sub) !== p.login_hint) return [400, { error: "login_required" }];
    const now = Math.floor(Date.now() / 1000);
    let claims: Record<string, unknown> = {
      ...message.claims,
      [`${LTI}target_link_uri`]: message.claims[`${LTI}target_link_uri`] || p.redirect_uri,
      iss: this.issuer,
      aud: this.clientId,
      azp: this.clientId,
      iat: now,
      exp: now + 300,
      nonce: p.nonce,
    };
    if (message.tamper) claims = message.tamper(claims);
    return [200, { url: p.redirect_uri, form: { id_token: await this.idToken(claims, message.sign), state: p.state } }];
  }

  /** A platform's openid_configuration + registration_token for the tool's /lti/register. */
  dynamicRegistrationParams(): { openid_configuration: string; registration_token: string } {
    const token = randomBytes(16).toString("hex");
    this.registrationTokens.add(token);
    return { openid_configuration: `${this.url}/.well-known/openid-configuration`, registration_token: token };
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? "/", this.url);
      const raw = await readBody(req);
      const type = req.headers["content-type"] ?? "";
      const form = type.startsWith("application/x-www-form-urlencoded") ? Object.fromEntries(new URLSearchParams(raw)) : {};
      let out: [number, unknown, Record<string, string>?] | null = null;
      if (req.method === "GET" && url.pathname === "/jwks") out = [200, { keys: this.keys.map((k) => k.publicJwk) }];
      else if (url.pathname === "/auth") {
        out = await this.authorize(req.method === "POST" ? new URLSearchParams(raw) : url.searchParams);
        // A browser gets the auto-posting form; a test asking for JSON gets {url, form}.
        if (out[0] === 200 && !(req.headers.accept ?? "").includes("json"))
          out = [200, autoPostForm(out[1] as { url: string; form: Record<string, string> }), { "content-type": "text/html" }];
      } else if (req.method === "GET" && url.pathname === "/.well-known/openid-configuration") out = [200, openidConfiguration(this)];
      else if (req.method === "POST" && url.pathname === "/register") out = await register(this, req, raw ? JSON.parse(raw) : {});
      else if (req.method === "POST" && url.pathname === "/deep-link-return") out = await deepLinkReturn(this, form);
      else out = await handleServices(this, req, url, raw, form);
      const [status, body, headers = {}] = out ?? [404, { error: "not_found" }];
      res.writeHead(status, { "content-type": "application/json", ...headers });
      res.end(typeof body === "string" ? body : JSON.stringify(body));
    } catch (err) {
      res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "emulator_error", message: (err as Error).message }));
    }
  }
}

const esc = (v: string) => v.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
function autoPostForm({ url, form }: { url: string; form: Record<string, string> }): string {
  const inputs = Object.entries(form).map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`);
  return `<!doctype html><form method="post" action="${esc(url)}">${inputs.join("")}</form><script>document.forms[0].submit()</script>`;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** Starts an emulator on an ephemeral port. */
export async function startPlatform(opts: { issuer?: string; clientId?: string; deploymentId?: string } = {}): Promise<Platform> {
  const p = new Platform();
  if (opts.issuer) p.issuer = opts.issuer;
  if (opts.clientId) p.clientId = opts.clientId;
  if (opts.deploymentId) p.deploymentId = opts.deploymentId;
  return p.start();
}
