import { randomBytes } from "node:crypto";
import type { Config } from "../config.ts";
import type { Db } from "../db.ts";
import { LtiError } from "./errors.ts";
import { findForLogin } from "./platforms.ts";

/**
 * Step 1 → 2 of the OIDC third-party-initiated login (1EdTech Security Framework §5.1.1): the platform sends the
 * browser here with iss, login_hint, target_link_uri (and lti_message_hint, client_id, lti_deployment_id); we
 * remember a random state and nonce and send the browser to the platform's authorization endpoint.
 */
export interface LoginParams {
  iss?: string;
  login_hint?: string;
  target_link_uri?: string;
  lti_message_hint?: string;
  client_id?: string;
  lti_deployment_id?: string;
}

/** How long the platform may take between our redirect and its form post to /lti/launch. */
export const STATE_TTL_MS = 10 * 60_000;

export async function initiateLogin(db: Db, config: Pick<Config, "PUBLIC_URL">, params: LoginParams) {
  const missing = (["iss", "login_hint", "target_link_uri"] as const).filter((k) => !params[k]);
  if (missing.length) throw new LtiError("LTI_MISSING_PARAMETER", `The login initiation lacks ${missing.join(", ")}.`, 400, { missing });
  const {
    iss,
    login_hint: loginHint,
    target_link_uri: targetLinkUri,
  } = params as Required<Pick<LoginParams, "iss" | "login_hint" | "target_link_uri">>;

  // The target must be this tool: otherwise a forged login could use us to bounce a browser anywhere.
  if (!sameOrigin(targetLinkUri, config.PUBLIC_URL))
    throw new LtiError(
      "LTI_BAD_TARGET_LINK_URI",
      `target_link_uri '${targetLinkUri}' is not an address of this tool (${config.PUBLIC_URL}).`,
      400,
    );

  const candidates = await findForLogin(db, iss, params.client_id);
  const enabled = candidates.filter((p) => !p.disabledAt);
  if (candidates.length === 0)
    throw new LtiError(
      "LTI_UNKNOWN_PLATFORM",
      `No platform '${iss}'${params.client_id ? ` with client id '${params.client_id}'` : ""} is registered.`,
      400,
    );
  if (enabled.length === 0)
    throw new LtiError("LTI_PLATFORM_DISABLED", "This platform's registration is disabled; ask the tool's admin.", 403);
  if (enabled.length > 1)
    throw new LtiError("LTI_AMBIGUOUS_PLATFORM", `Several registrations share the issuer '${iss}': the platform must send client_id.`, 400);
  const platform = enabled[0]!;

  const state = randomBytes(32).toString("base64url");
  const nonce = randomBytes(32).toString("base64url");
  const now = Date.now();
  // Expired states of abandoned logins go here, a cheap indexed delete, instead of by a separate sweeper.
  await db.ltiState.deleteMany({ where: { expiresAt: { lt: new Date(now) } } });
  await db.ltiNonce.deleteMany({ where: { expiresAt: { lt: new Date(now) } } });
  await db.ltiState.create({ data: { state, nonce, platformId: platform.id, targetLinkUri, expiresAt: new Date(now + STATE_TTL_MS) } });

  const url = new URL(platform.authLoginUrl);
  const query: Record<string, string | undefined> = {
    scope: "openid",
    response_type: "id_token",
    response_mode: "form_post",
    prompt: "none",
    client_id: platform.clientId,
    redirect_uri: `${config.PUBLIC_URL.replace(/\/$/, "")}/lti/launch`,
    login_hint: loginHint,
    lti_message_hint: params.lti_message_hint,
    state,
    nonce,
  };
  for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
  return { redirect: url.toString(), state };
}

function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}
