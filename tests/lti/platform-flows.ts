/**
 * The platform emulator's flows around launches: its OpenID configuration and Dynamic Registration endpoint, and
 * the deep-linking return (verifies the tool's JWT over the tool's JWKS and places the returned links and their
 * line items, as an LMS does). Split from platform.ts to keep each file readable; never imports the tool's code.
 */
import type { IncomingMessage } from "node:http";
import { randomBytes } from "node:crypto";
import { decodeJwt, jwtVerify, type JWTPayload } from "jose";
import { DL_CLAIM, SCOPES, type DeepLinked, type LineItem, type Platform } from "./platform.ts";

export function openidConfiguration(p: Platform) {
  return {
    issuer: p.issuer,
    authorization_endpoint: `${p.url}/auth`,
    token_endpoint: `${p.url}/token`,
    token_endpoint_auth_methods_supported: ["private_key_jwt"],
    token_endpoint_auth_signing_alg_values_supported: ["RS256"],
    jwks_uri: `${p.url}/jwks`,
    registration_endpoint: `${p.url}/register`,
    scopes_supported: ["openid", ...Object.values(SCOPES)],
    response_types_supported: ["id_token"],
    subject_types_supported: ["public", "pairwise"],
    id_token_signing_alg_values_supported: ["RS256"],
    claims_supported: ["sub", "iss", "name", "given_name", "family_name", "email"],
    "https://purl.imsglobal.org/spec/lti-platform-configuration": {
      product_family_code: "emulator",
      version: "1.0",
      messages_supported: [{ type: "LtiResourceLinkRequest" }, { type: "LtiDeepLinkingRequest" }],
    },
  };
}

export async function register(p: Platform, req: IncomingMessage, body: Record<string, unknown>): Promise<[number, unknown]> {
  const token = req.headers.authorization?.replace(/^Bearer /i, "");
  if (p.registrationTokens.size && (!token || !p.registrationTokens.has(token))) return [401, { error: "invalid_token" }];
  const toolConfig = body["https://purl.imsglobal.org/spec/lti-tool-configuration"] as Record<string, unknown> | undefined;
  const missing = ["initiate_login_uri", "redirect_uris", "jwks_uri", "client_name"].filter((k) => !body[k]);
  if (!toolConfig) missing.push("lti-tool-configuration");
  if (missing.length) return [400, { error: "invalid_client_metadata", error_description: `missing ${missing.join(", ")}` }];
  p.clientId = `dyn-${randomBytes(4).toString("hex")}`;
  p.deploymentId = `dyn-deployment-${p.state.registrations.length + 1}`;
  p.state.registrations.push({ body, token, clientId: p.clientId, deploymentId: p.deploymentId });
  p.connectTool({ jwksUrl: String(body.jwks_uri), redirectUris: body.redirect_uris as string[] });
  return [
    200,
    {
      ...body,
      client_id: p.clientId,
      "https://purl.imsglobal.org/spec/lti-tool-configuration": { ...toolConfig, deployment_id: p.deploymentId },
    },
  ];
}

export async function deepLinkReturn(p: Platform, form: Record<string, string>): Promise<[number, unknown]> {
  const jwt = form.JWT ?? "";
  try {
    const { payload } = await jwtVerify(jwt, p.toolKeys(), { audience: p.issuer, issuer: p.clientId, algorithms: ["RS256"] });
    p.state.deepLinkResponses.push({ jwt, payload, verified: true, links: placeContentItems(p, payload) });
    return [200, { ok: true }];
  } catch (err) {
    let payload: JWTPayload | null = null;
    try {
      payload = decodeJwt(jwt);
    } catch {
      /* not even a JWT */
    }
    p.state.deepLinkResponses.push({ jwt, payload, verified: false, error: (err as Error).message });
    return [400, { error: (err as Error).message }];
  }
}

/** What an LMS does with returned ltiResourceLink items: a link in the course, and a gradebook column if asked. */
function placeContentItems(p: Platform, payload: JWTPayload): DeepLinked[] {
  const contextId = p.deepLinkContexts.get(String(payload[`${DL_CLAIM}data`] ?? "platform-opaque-data")) ?? "course-1";
  const items = (payload[`${DL_CLAIM}content_items`] ?? []) as Record<string, unknown>[];
  return items
    .filter((i) => i.type === "ltiResourceLink")
    .map((item, n) => {
      const placed: DeepLinked = {
        contextId,
        resourceLinkId: `dl-${p.state.deepLinkResponses.length + 1}-${n + 1}`,
        title: item.title as string | undefined,
        url: item.url as string | undefined,
        custom: (item.custom ?? {}) as Record<string, string>,
      };
      const li = item.lineItem as { label?: string; scoreMaximum?: number; resourceId?: string; tag?: string } | undefined;
      if (li && typeof li.scoreMaximum === "number") {
        placed.lineItemId = String(++p.state.lineItemCount);
        const line: LineItem = {
          id: placed.lineItemId,
          label: li.label ?? String(item.title ?? "Untitled"),
          scoreMaximum: li.scoreMaximum,
          resourceLinkId: placed.resourceLinkId,
          ...(li.resourceId ? { resourceId: li.resourceId } : {}),
          ...(li.tag ? { tag: li.tag } : {}),
        };
        p.state.lineItems.set(contextId, [...p.lineItemsOf(contextId), line]);
      }
      return placed;
    });
}
