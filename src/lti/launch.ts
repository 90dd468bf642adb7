import { decodeProtectedHeader, errors, type JWTPayload } from "jose";
import { Prisma, type Db } from "../db.ts";
import { CLAIM, MESSAGE } from "./claims.ts";
import { LtiError } from "./errors.ts";
import { JwksUnavailableError, type PlatformKeySets } from "./platform-jwks.ts";
import type { Platform } from "./platforms.ts";

/**
 * Step 3 of the 1EdTech Security Framework's OIDC launch: the platform posts `id_token` and `state` to /lti/launch.
 * Every check below refuses with its own code; nothing is written here except consuming the state (single use).
 * The nonce is recorded by the provisioning transaction, so a refused launch leaves no trace but its log line.
 */

/** Seconds of clock difference tolerated between the platform and us for exp/iat. */
export const CLOCK_TOLERANCE_S = 60;

export interface ValidLaunch {
  platform: Platform;
  claims: JWTPayload & Record<string, unknown>;
  messageType: (typeof MESSAGE)["resourceLink"] | (typeof MESSAGE)["deepLinking"];
  deploymentId: string;
  nonce: string;
  /** Until when the nonce must be remembered: the token's own expiry (plus tolerance), after which exp refuses it anyway. */
  nonceExpiresAt: Date;
  /** True when the platform was registered dynamically without a deployment id and this launch supplies the first. */
  newDeployment: boolean;
}

export interface LaunchForm {
  id_token?: string;
  state?: string;
  error?: string;
  error_description?: string;
}

const refuse = (code: string, message: string, status = 401, details?: unknown) => new LtiError(code, message, status, details);

export async function validateLaunch(db: Db, keySets: PlatformKeySets, form: LaunchForm, stateCookies: string[]): Promise<ValidLaunch> {
  if (form.error)
    throw refuse(
      "LTI_PLATFORM_ERROR",
      `The platform answered the login with '${form.error}': ${form.error_description ?? "no description"}.`,
      400,
    );
  if (!form.id_token || !form.state) throw refuse("LTI_MISSING_PARAMETER", "The launch needs the form fields id_token and state.", 400);

  // Single use: the row is deleted by the first launch that names it, whatever the outcome.
  // Only "no such row" is a refusal; a database failure propagates (503), it says nothing about the state.
  const state = await db.ltiState.delete({ where: { state: form.state } }).catch((e: unknown) => {
    if (e instanceof Prisma.PrismaClientKnownRequestError && e.code === "P2025") return null;
    throw e;
  });
  if (!state) throw refuse("LTI_STATE_MISMATCH", "Unknown or already used state: start the launch again from the course.");
  if (stateCookies.length > 0 && !stateCookies.includes(form.state))
    throw refuse("LTI_STATE_MISMATCH", "The state does not belong to this browser's login: start the launch again from the course.");
  if (state.expiresAt <= new Date()) throw refuse("LTI_STATE_EXPIRED", "The login took too long; start the launch again from the course.");

  const platform = await db.ltiPlatform.findUnique({ where: { id: state.platformId } });
  if (!platform || platform.disabledAt)
    throw refuse("LTI_PLATFORM_DISABLED", "This platform's registration is disabled; ask the tool's admin.", 403);

  let header;
  try {
    header = decodeProtectedHeader(form.id_token);
  } catch {
    throw refuse("LTI_MALFORMED_TOKEN", "The id_token is not a JWS in compact form.", 400);
  }
  if (header.alg !== "RS256")
    throw refuse("LTI_ALG_REFUSED", `The id_token is signed with '${String(header.alg)}'; only RS256 is accepted.`);
  if (!header.kid) throw refuse("LTI_UNKNOWN_KID", "The id_token's header names no kid; the platform's key cannot be chosen.");

  const claims = (await verifyToken(keySets, platform, form.id_token, header.kid)) as ValidLaunch["claims"];

  // jose checks iat only against a maximum age; a token minted in the future means a broken or forging clock.
  if ((claims.iat ?? 0) > Date.now() / 1000 + CLOCK_TOLERANCE_S) throw refuse("LTI_BAD_IAT", "The id_token's iat is in the future.");
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if ((aud.length > 1 || claims.azp !== undefined) && claims.azp !== platform.clientId)
    throw refuse("LTI_WRONG_AUDIENCE", `With several audiences, azp must be this tool's client id '${platform.clientId}'.`);

  const nonce = claims.nonce;
  if (typeof nonce !== "string" || !nonce) throw missing("nonce");
  const seen = await db.ltiNonce.findUnique({ where: { platformId_nonce: { platformId: platform.id, nonce } } });
  if (seen) throw refuse("LTI_NONCE_REPLAYED", "This id_token's nonce was used by an earlier launch: a replay is refused.");
  if (nonce !== state.nonce) throw refuse("LTI_NONCE_MISMATCH", "The id_token's nonce is not the one this login sent to the platform.");

  const deploymentId = claims[CLAIM.deploymentId];
  if (typeof deploymentId !== "string" || !deploymentId) throw missing(CLAIM.deploymentId);
  // Trust on first use only for a dynamic registration whose answer carried no deployment id (Canvas makes the
  // deployment when the tool is installed, after registering it); the id_token is signed by the registered keys.
  const newDeployment = platform.registeredBy === "dynamic" && platform.deploymentIds.length === 0;
  if (!newDeployment && !platform.deploymentIds.includes(deploymentId))
    throw refuse(
      "LTI_UNKNOWN_DEPLOYMENT",
      `Deployment '${deploymentId}' is not registered for this platform; an admin can add it with PATCH /v1/lti/platforms/${platform.id}.`,
      403,
      { deploymentId },
    );

  const messageType = claims[CLAIM.messageType];
  if (messageType !== MESSAGE.resourceLink && messageType !== MESSAGE.deepLinking)
    throw refuse("LTI_UNSUPPORTED_MESSAGE", `Message type '${String(messageType)}' is not one this tool handles.`, 400);
  if (claims[CLAIM.version] !== "1.3.0")
    throw refuse("LTI_BAD_VERSION", `LTI version '${String(claims[CLAIM.version])}' is not 1.3.0.`, 400);
  requireClaims(claims, messageType);

  return {
    platform,
    claims,
    messageType,
    deploymentId,
    nonce,
    nonceExpiresAt: new Date(((claims.exp ?? 0) + CLOCK_TOLERANCE_S) * 1000),
    newDeployment,
  };
}

async function verifyToken(keySets: PlatformKeySets, platform: Platform, token: string, kid: string) {
  try {
    return await keySets.verify(token, platform.jwksUrl, {
      algorithms: ["RS256"],
      issuer: platform.issuer,
      audience: platform.clientId,
      clockTolerance: CLOCK_TOLERANCE_S,
      requiredClaims: ["iat", "exp", "sub"],
    });
  } catch (e) {
    throw joseRefusal(e, platform, kid);
  }
}

function joseRefusal(e: unknown, platform: Platform, kid: string): unknown {
  if (e instanceof JwksUnavailableError)
    return refuse("LTI_JWKS_UNAVAILABLE", `The platform's keys could not be fetched from ${platform.jwksUrl}; try the launch again.`, 502);
  if (e instanceof errors.JWKSNoMatchingKey) return refuse("LTI_UNKNOWN_KID", `The platform's key set has no key '${kid}'.`);
  if (e instanceof errors.JWKSMultipleMatchingKeys) return refuse("LTI_UNKNOWN_KID", `The platform's key set has several keys '${kid}'.`);
  if (e instanceof errors.JWSSignatureVerificationFailed)
    return refuse("LTI_BAD_SIGNATURE", "The id_token's signature does not verify with the platform's key.");
  if (e instanceof errors.JOSEAlgNotAllowed) return refuse("LTI_ALG_REFUSED", "Only RS256 is accepted.");
  if (e instanceof errors.JWTExpired) return refuse("LTI_EXPIRED", "The id_token has expired.");
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.reason === "missing") return missing(e.claim);
    if (e.claim === "iss") return refuse("LTI_WRONG_ISSUER", `The id_token's issuer is not '${platform.issuer}'.`);
    if (e.claim === "aud")
      return refuse("LTI_WRONG_AUDIENCE", `The id_token is not addressed to this tool's client id '${platform.clientId}'.`);
    if (e.claim === "iat" || e.claim === "nbf") return refuse("LTI_BAD_IAT", `The id_token's ${e.claim} is in the future.`);
    return refuse("LTI_BAD_CLAIM", `The id_token's claim '${e.claim}' is invalid: ${e.message}.`, 400);
  }
  if (e instanceof errors.JWSInvalid || e instanceof errors.JWTInvalid || e instanceof errors.JOSENotSupported)
    return refuse("LTI_MALFORMED_TOKEN", `The id_token is malformed: ${e.message}.`, 400);
  return e;
}

const missing = (claim: string) => refuse("LTI_MISSING_CLAIM", `The id_token lacks the claim '${claim}'.`, 400, { claim });

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const nonEmpty = (v: unknown) => typeof v === "string" && v.length > 0;

/** LTI Core §5.3/§5.4 and Deep Linking §4.4: what each message must carry; a context too, since we need a course. */
function requireClaims(claims: Record<string, unknown>, messageType: string) {
  if (!nonEmpty(claims.sub)) throw missing("sub");
  const roles = claims[CLAIM.roles];
  if (!Array.isArray(roles) || roles.some((r) => typeof r !== "string")) throw missing(CLAIM.roles);
  const context = claims[CLAIM.context];
  if (!isObject(context) || !nonEmpty(context.id)) throw missing(`${CLAIM.context}.id`);
  if (messageType === MESSAGE.resourceLink) {
    const link = claims[CLAIM.resourceLink];
    if (!isObject(link) || !nonEmpty(link.id)) throw missing(`${CLAIM.resourceLink}.id`);
    if (!nonEmpty(claims[CLAIM.targetLinkUri])) throw missing(CLAIM.targetLinkUri);
  } else {
    const settings = claims[CLAIM.dlSettings];
    if (!isObject(settings) || !nonEmpty(settings.deep_link_return_url)) throw missing(`${CLAIM.dlSettings}.deep_link_return_url`);
    if (!Array.isArray(settings.accept_types)) throw missing(`${CLAIM.dlSettings}.accept_types`);
  }
}
