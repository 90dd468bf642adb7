import type { FastifyReply, FastifyRequest } from "fastify";
import type { Config } from "../config.ts";
import { STATE_TTL_MS } from "./login.ts";
import type { Provisioned } from "./provision.ts";

/**
 * Binding the state to the browser (Security Framework §5.1.1.2 recommends it): /lti/login sets a cookie named after
 * the state, /lti/launch requires it when the browser sends any of ours. SameSite=None; Secure, because the launch is
 * a cross-site form post from the LMS (a Lax cookie would not come back). A launch WITHOUT any of our cookies is
 * still accepted on the database state alone: LMSs show the tool in an iframe where browsers (Safari, Chrome's
 * third-party cookie blocking) drop our cookies, and the state is 256 random bits, single use, 10 minutes, and
 * matched to the nonce inside the platform-signed id_token. What is given up is protection against login CSRF
 * (someone posting their own launch into your browser), which would only sign you into their course session.
 */
const PREFIX = "lti_state_";

export function setStateCookie(reply: FastifyReply, state: string) {
  reply.header("set-cookie", `${PREFIX}${state}=${state}; Path=/lti; Max-Age=${STATE_TTL_MS / 1000}; HttpOnly; Secure; SameSite=None`);
}

export function clearStateCookie(reply: FastifyReply, state: string) {
  reply.header("set-cookie", `${PREFIX}${state}=; Path=/lti; Max-Age=0; HttpOnly; Secure; SameSite=None`);
}

/** The states whose cookies this browser sent. */
export function stateCookies(req: FastifyRequest): string[] {
  return String(req.headers.cookie ?? "")
    .split(";")
    .map((c) => c.trim())
    .filter((c) => c.startsWith(PREFIX))
    .map((c) => c.slice(c.indexOf("=") + 1))
    .filter(Boolean);
}

/**
 * The browser's way on: the landing page (a front end) gets the session token in the fragment, which browsers never
 * send to a server nor put in a Referer, so it stays out of logs.
 */
export function landingUrl(config: Pick<Config, "PUBLIC_URL" | "LTI_LANDING_URL">, p: Provisioned): string {
  const url = new URL(config.LTI_LANDING_URL ?? `${config.PUBLIC_URL.replace(/\/$/, "")}/docs`);
  const fragment = new URLSearchParams({ token: p.token, courseId: p.courseId });
  if (p.assignmentId) fragment.set("assignmentId", p.assignmentId);
  if (p.deepLinking) fragment.set("deepLinking", "1");
  url.hash = fragment.toString();
  return url.toString();
}
