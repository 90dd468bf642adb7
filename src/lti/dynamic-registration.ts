import { z } from "zod";
import type { Config } from "../config.ts";
import { LtiError } from "./errors.ts";
import { PLATFORM_CONFIGURATION, TOOL_CONFIGURATION } from "./claims.ts";
import { urlProblem, type PlatformInput } from "./platforms.ts";
import { toolRegistration } from "./tool-config.ts";

/**
 * LTI Dynamic Registration 1.0: the platform opens /lti/register?openid_configuration=…&registration_token=… in
 * the admin's browser. We fetch the platform's OpenID configuration, check it, post our registration to its
 * registration_endpoint, and return what to store. Nothing is stored unless every step succeeded.
 */
const openIdConfiguration = z.looseObject({
  issuer: z.string().min(1),
  authorization_endpoint: z.string().min(1),
  token_endpoint: z.string().min(1),
  jwks_uri: z.string().min(1),
  registration_endpoint: z.string().min(1),
  scopes_supported: z.array(z.string()).optional(),
  id_token_signing_alg_values_supported: z.array(z.string()).optional(),
  [PLATFORM_CONFIGURATION]: z.looseObject({ product_family_code: z.string().optional(), version: z.string().optional() }).optional(),
});

const registrationAnswer = z.looseObject({
  client_id: z.string().min(1),
  [TOOL_CONFIGURATION]: z.looseObject({ deployment_id: z.string().min(1).optional() }).optional(),
});

const fail = (code: string, message: string, details?: unknown) => new LtiError(code, message, 400, details);
const TIMEOUT_MS = 10_000;

export async function registerDynamically(
  config: Pick<Config, "PUBLIC_URL" | "NODE_ENV">,
  query: { openid_configuration?: string; registration_token?: string },
): Promise<{ platform: PlatformInput }> {
  const configUrl = query.openid_configuration;
  if (!configUrl) throw fail("LTI_REGISTRATION_PARAMETER", "Open this page from the LMS: it needs ?openid_configuration=….");
  const problem = urlProblem(configUrl, config);
  if (problem) throw fail("LTI_REGISTRATION_URL", `openid_configuration ${problem}.`);
  const auth: Record<string, string> = query.registration_token ? { authorization: `Bearer ${query.registration_token}` } : {};

  const fetched = openIdConfiguration.safeParse(
    await fetchJson(configUrl, { headers: { accept: "application/json", ...auth } }, "the OpenID configuration"),
  );
  if (!fetched.success)
    throw fail(
      "LTI_REGISTRATION_CONFIGURATION",
      "The platform's OpenID configuration lacks required fields.",
      fetched.error.issues.map((i) => i.path.join(".")),
    );
  const platformConfig = fetched.data;
  // §3.5.1: the issuer must be of the same host as the configuration URL, or a page could register a foreign issuer.
  if (hostOf(platformConfig.issuer) !== hostOf(configUrl))
    throw fail(
      "LTI_REGISTRATION_ISSUER",
      `The issuer '${platformConfig.issuer}' is not on the host of the configuration URL '${configUrl}'.`,
    );
  for (const field of ["issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint"] as const) {
    const p = urlProblem(platformConfig[field], config);
    if (p) throw fail("LTI_REGISTRATION_URL", `The platform's ${field} ${p}.`);
  }
  const algs = platformConfig.id_token_signing_alg_values_supported;
  if (algs && !algs.includes("RS256"))
    throw fail("LTI_REGISTRATION_ALG", "The platform does not sign id_tokens with RS256, the only algorithm this tool accepts.");

  const family = platformConfig[PLATFORM_CONFIGURATION]?.product_family_code;
  const body = toolRegistration(config, { scopesSupported: platformConfig.scopes_supported, productFamily: family });
  const answer = registrationAnswer.safeParse(
    await fetchJson(
      platformConfig.registration_endpoint,
      { method: "POST", headers: { "content-type": "application/json", accept: "application/json", ...auth }, body: JSON.stringify(body) },
      "the registration",
    ),
  );
  if (!answer.success) throw fail("LTI_REGISTRATION_ANSWER", "The platform's answer to the registration has no client_id.");
  const deploymentId = answer.data[TOOL_CONFIGURATION]?.deployment_id;
  return {
    platform: {
      issuer: platformConfig.issuer,
      clientId: answer.data.client_id,
      deploymentIds: deploymentId ? [deploymentId] : [],
      authLoginUrl: platformConfig.authorization_endpoint,
      authTokenUrl: platformConfig.token_endpoint,
      jwksUrl: platformConfig.jwks_uri,
      name: family ? `${family} (${hostOf(platformConfig.issuer)})` : (hostOf(platformConfig.issuer) ?? undefined),
    },
  };
}

async function fetchJson(url: string, init: RequestInit, what: string): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, redirect: "error", signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (e) {
    throw fail("LTI_REGISTRATION_UNREACHABLE", `Could not reach ${url} for ${what}: ${(e as Error).message}.`);
  }
  const text = await res.text();
  if (!res.ok) throw fail("LTI_REGISTRATION_REFUSED", `The platform answered ${what} with HTTP ${res.status}: ${text.slice(0, 300)}`);
  try {
    return JSON.parse(text);
  } catch {
    throw fail("LTI_REGISTRATION_ANSWER", `The platform's answer to ${what} is not JSON.`);
  }
}

function hostOf(url: string): string | null {
  try {
    return new URL(url).host;
  } catch {
    return null;
  }
}
