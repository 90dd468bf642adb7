import type { Config } from "../config.ts";
import { MESSAGE, TOOL_CONFIGURATION, TOOL_SCOPES } from "./claims.ts";

/** The tool as LMSs see it: its URLs, the scopes it asks for, the messages it takes. One source for both formats. */
const TITLE = "Autograder";
const DESCRIPTION = "Autograded problem sets and exams (answers and ONNX models); scores return to the LMS gradebook.";
/** Claims the tool reads from an id_token besides the LTI ones: who the person is. */
const CLAIMS = ["iss", "sub", "name", "given_name", "family_name", "email"];

export function toolUrls(config: Pick<Config, "PUBLIC_URL">) {
  const base = config.PUBLIC_URL.replace(/\/$/, "");
  return {
    base,
    domain: new URL(base).host,
    login: `${base}/lti/login`,
    launch: `${base}/lti/launch`,
    jwks: `${base}/lti/jwks.json`,
    register: `${base}/lti/register`,
  };
}

/** LTI Dynamic Registration 1.0 §3.3: the client registration request the tool posts to the platform. */
export function toolRegistration(config: Pick<Config, "PUBLIC_URL">, opts: { scopesSupported?: string[]; productFamily?: string }) {
  const u = toolUrls(config);
  // Ask only for what the platform offers, when it says (Canvas refuses a registration asking for unknown scopes).
  const scopes = opts.scopesSupported ? TOOL_SCOPES.filter((s) => opts.scopesSupported!.includes(s)) : TOOL_SCOPES;
  const canvas = opts.productFamily === "canvas";
  return {
    application_type: "web",
    response_types: ["id_token"],
    grant_types: ["implicit", "client_credentials"],
    initiate_login_uri: u.login,
    redirect_uris: [u.launch],
    client_name: TITLE,
    jwks_uri: u.jwks,
    token_endpoint_auth_method: "private_key_jwt",
    scope: scopes.join(" "),
    [TOOL_CONFIGURATION]: {
      domain: u.domain,
      description: DESCRIPTION,
      target_link_uri: u.launch,
      claims: CLAIMS,
      messages: [
        { type: MESSAGE.resourceLink, target_link_uri: u.launch, label: TITLE, ...(canvas ? { placements: ["course_navigation"] } : {}) },
        {
          type: MESSAGE.deepLinking,
          target_link_uri: u.launch,
          label: `${TITLE}: add a problem set`,
          ...(canvas ? { placements: ["assignment_selection", "link_selection"] } : {}),
        },
      ],
    },
  };
}

/**
 * Canvas's developer key JSON ("Manual Entry" → "Paste JSON", or "Enter URL" with /lti/config.json): the same URLs,
 * Canvas's placements, and custom fields Canvas fills in on each launch.
 */
export function canvasConfiguration(config: Pick<Config, "PUBLIC_URL">) {
  const u = toolUrls(config);
  const placement = (placement: string, messageType: string) => ({
    placement,
    message_type: messageType,
    target_link_uri: u.launch,
    text: TITLE,
  });
  return {
    title: TITLE,
    description: DESCRIPTION,
    oidc_initiation_url: u.login,
    target_link_uri: u.launch,
    public_jwk_url: u.jwks,
    scopes: TOOL_SCOPES,
    extensions: [
      {
        platform: "canvas.instructure.com",
        domain: u.domain,
        tool_id: "autograder",
        privacy_level: "public",
        settings: {
          text: TITLE,
          placements: [
            placement("assignment_selection", MESSAGE.deepLinking),
            placement("link_selection", MESSAGE.deepLinking),
            placement("course_navigation", MESSAGE.resourceLink),
          ],
        },
      },
    ],
    custom_fields: { canvas_course_id: "$Canvas.course.id", canvas_assignment_id: "$Canvas.assignment.id" },
  };
}
