import { randomBytes } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { AppError } from "../errors.ts";

/** The few pages the LTI flow shows in the LMS's iframe or pop-up: errors, the deep-linking form, the registration end. */

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

/**
 * HTML for a browser (its navigations and form posts send Accept: text/html), JSON for everyone else: a client that
 * asks for application/json, and programs that send no Accept or * / *.
 */
export function wantsJson(req: FastifyRequest): boolean {
  const accept = String(req.headers.accept ?? "");
  return /application\/json/i.test(accept) || !/text\/html/i.test(accept);
}

/**
 * The page is shown inside the LMS (iframe), so framing is allowed; its only script carries a per-response nonce,
 * and a form may post only to `formAction` (the platform's return URL). Nothing here is clickable, so framing it
 * gives a clickjacker nothing to aim at.
 */
function sendPage(reply: FastifyReply, status: number, title: string, body: string, opts: { script?: string; formAction?: string } = {}) {
  const nonce = randomBytes(16).toString("base64");
  const csp = [
    "default-src 'none'",
    "style-src 'unsafe-inline'",
    `script-src ${opts.script ? `'nonce-${nonce}'` : "'none'"}`,
    `form-action ${opts.formAction ? new URL(opts.formAction).origin : "'none'"}`,
    "frame-ancestors *",
    "base-uri 'none'",
  ].join("; ");
  reply.removeHeader("x-frame-options");
  // Dynamic registration may run in a pop-up that must reach window.opener: helmet's same-origin COOP would cut it.
  reply.header("cross-origin-opener-policy", "unsafe-none");
  const script = opts.script ? `<script nonce="${nonce}">${opts.script}</script>` : "";
  return reply
    .status(status)
    .header("content-security-policy", csp)
    .header("cache-control", "no-store")
    .type("text/html; charset=utf-8")
    .send(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>` +
        `<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:40rem}code{background:#eee;padding:0 .2em}</style>` +
        `</head><body>${body}${script}</body></html>`,
    );
}

/** A refused LTI request: the failed check's code and message, for the LMS admin reading the iframe. */
export function sendErrorPage(reply: FastifyReply, err: AppError) {
  return sendPage(
    reply,
    err.status,
    "LTI launch refused",
    `<h1>This launch was refused</h1><p>${escape(err.message)}</p><p>Check: <code>${escape(err.code)}</code></p>`,
  );
}

/** Deep Linking 2.0: the form that carries the signed response back to the platform, posted at once. */
export function sendAutoPostForm(reply: FastifyReply, action: string, fields: Record<string, string>) {
  const inputs = Object.entries(fields)
    .map(([k, v]) => `<input type="hidden" name="${escape(k)}" value="${escape(v)}">`)
    .join("");
  return sendPage(
    reply,
    200,
    "Returning to the course",
    `<form id="return" method="post" action="${escape(action)}">${inputs}<noscript><button>Continue</button></noscript></form>`,
    { script: 'document.getElementById("return").submit();', formAction: action },
  );
}

/** Dynamic Registration's last step: tell the platform's window that the tool is done, so it closes the dialog. */
export function sendRegistrationDone(reply: FastifyReply, platformName: string) {
  return sendPage(
    reply,
    200,
    "Registered",
    `<h1>Registered</h1><p>The autograder is now registered with ${escape(platformName)}. You can close this window.</p>`,
    { script: '(window.opener || window.parent).postMessage({subject: "org.imsglobal.lti.close"}, "*");' },
  );
}

/** An error from an /lti/* route: JSON in our error shape, or the page. Anything not an AppError goes to the handler. */
export function sendLtiError(req: FastifyRequest, reply: FastifyReply, err: unknown) {
  if (!(err instanceof AppError)) throw err;
  req.log.warn({ code: err.code, status: err.status, url: req.routeOptions.url }, `LTI refused: ${err.message}`);
  if (wantsJson(req)) {
    const error = { code: err.code, message: err.message, ...(err.details === undefined ? {} : { details: err.details }) };
    return reply.status(err.status).send({ error });
  }
  return sendErrorPage(reply, err);
}
