/**
 * The tool (our app) listening on a real port for the LTI tests: the platform emulator posts to it and it fetches the
 * emulator's JWKS over HTTP, like in production. Plus the steps of a launch as a browser would make them.
 */
import { createHarness, createWorld, type Harness, type World } from "../helpers/harness.ts";
import type { LaunchMessage, Platform } from "./platform.ts";
import { freePort } from "../helpers/ports.ts";

export interface Tool {
  h: Harness;
  world: World;
  base: string;
  loginUrl: string;
  launchUrl: string;
  /** Registers the emulator with the tool (POST /v1/lti/platforms) and tells the emulator the tool's JWKS. */
  register(platform: Platform, extra?: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

export async function startTool(name: string, overrides: Record<string, string> = {}): Promise<Tool> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  // Cooldown 0: a test that rotates the platform's key must not wait 30 s for the refetch it allows.
  const h = await createHarness(name, { PUBLIC_URL: base, LTI_JWKS_COOLDOWN_S: "0", ...overrides });
  await h.app.listen({ port, host: "127.0.0.1" });
  const world = await createWorld(h, { students: 1, course: `${name.replace(/_/g, "-")}-home` });
  return {
    h,
    world,
    base,
    loginUrl: `${base}/lti/login`,
    launchUrl: `${base}/lti/launch`,
    async register(platform, extra = {}) {
      const res = await h.call("POST", "/v1/lti/platforms", { token: world.adminToken, body: { ...platform.registration(), ...extra } });
      if (res.statusCode !== 201) throw new Error(`register: ${res.statusCode} ${res.body}`);
      platform.connectTool({ jwksUrl: `${base}/lti/jwks.json`, redirectUris: [`${base}/lti/launch`] });
      return res.json().id;
    },
    close: () => h.close(),
  };
}

/** Login → the platform's /auth → the form a browser would post to /lti/launch. */
export function authorize(tool: Tool, platform: Platform, message: LaunchMessage) {
  return platform.startLaunch({ loginUrl: tool.loginUrl, launchUrl: tool.launchUrl }, message);
}

/** Posts the launch form as the platform's auto-submitting page would, as a JSON client (or a browser). */
export async function postLaunch(tool: Tool, form: Record<string, string>, opts: { json?: boolean; cookie?: string } = {}) {
  const headers: Record<string, string> = {};
  // What a browser's form post sends, or a JSON client's.
  headers.accept = opts.json === false ? "text/html,application/xhtml+xml,*/*;q=0.8" : "application/json";
  if (opts.cookie) headers.cookie = opts.cookie;
  const res = await fetch(tool.launchUrl, { method: "POST", body: new URLSearchParams(form), headers, redirect: "manual" });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text);
  } catch {
    /* an HTML page */
  }
  return { status: res.status, location: res.headers.get("location"), text, json, headers: res.headers };
}

/** A whole launch: login, authorize, post. */
export async function launch(tool: Tool, platform: Platform, message: LaunchMessage, opts: { json?: boolean } = {}) {
  return postLaunch(tool, (await authorize(tool, platform, message)).form, opts);
}

/** Rows a refused launch must not create. */
export async function counts(h: Harness) {
  const [users, courses, enrollments, ltiUsers, contexts, links, tokens, nonces] = await Promise.all([
    h.db.user.count(),
    h.db.course.count(),
    h.db.enrollment.count(),
    h.db.ltiUser.count(),
    h.db.ltiContext.count(),
    h.db.ltiResourceLink.count(),
    h.db.apiToken.count(),
    h.db.ltiNonce.count(),
  ]);
  return { users, courses, enrollments, ltiUsers, contexts, links, tokens, nonces };
}
