import type { CourseRole } from "../services/access.ts";

/**
 * LTI roles (LTI Core §A.2, LIS v2 vocabularies) → the course role. Context (membership) roles decide; a TA
 * sub-role beats the Instructor principal role it comes with (§A.2.3: a sub-role is sent together with its
 * principal role). Institution and system roles count only when no context role is sent (a Canvas admin opening a
 * course they are not enrolled in). Mentor (Canvas's "Observer": parents, advisors) maps to nothing: a TA could read
 * every student's work, which a parent must not, and a student enrolment would let them submit.
 */
const MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#";
const MEMBERSHIP_SUB = "http://purl.imsglobal.org/vocab/lis/v2/membership/";
const INSTITUTION = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#";
const SYSTEM = "http://purl.imsglobal.org/vocab/lis/v2/system/person#";

const CONTEXT_ROLES: Record<string, CourseRole> = {
  Administrator: "instructor",
  ContentDeveloper: "instructor",
  Instructor: "instructor",
  Learner: "student",
};
const TA_SUB_ROLES = new Set([
  "TeachingAssistant",
  "TeachingAssistantSection",
  "TeachingAssistantSectionAssociation",
  "TeachingAssistantOffering",
  "TeachingAssistantTemplate",
  "TeachingAssistantGroup",
  "Grader",
]);
const FALLBACK_ROLES: Record<string, CourseRole> = {
  Administrator: "instructor",
  SysAdmin: "instructor",
  Student: "student",
  Learner: "student",
};

export function mapLtiRoles(roles: readonly string[]): CourseRole | null {
  const context = new Set<CourseRole>();
  let ta = false;
  const fallback = new Set<CourseRole>();
  for (const uri of roles) {
    if (uri.startsWith(MEMBERSHIP)) {
      const name = uri.slice(MEMBERSHIP.length);
      if (name === "TeachingAssistant")
        ta = true; // an older short form Canvas used
      else if (CONTEXT_ROLES[name]) context.add(CONTEXT_ROLES[name]);
    } else if (uri.startsWith(MEMBERSHIP_SUB)) {
      const [principal, sub] = uri.slice(MEMBERSHIP_SUB.length).split("#") as [string, string | undefined];
      if (principal === "Instructor" && sub && TA_SUB_ROLES.has(sub)) ta = true;
      else if (CONTEXT_ROLES[principal]) context.add(CONTEXT_ROLES[principal]);
    } else if (uri.startsWith(INSTITUTION) || uri.startsWith(SYSTEM)) {
      const name = uri.slice(uri.indexOf("#") + 1);
      if (FALLBACK_ROLES[name]) fallback.add(FALLBACK_ROLES[name]);
    } else if (!uri.includes("/") && !uri.includes("#")) {
      // LTI 1.1 simple names, deprecated but still sent by some platforms.
      if (uri === "TeachingAssistant") ta = true;
      else if (CONTEXT_ROLES[uri]) context.add(CONTEXT_ROLES[uri]);
    }
  }
  if (ta) return "ta";
  if (context.size) return context.has("instructor") ? "instructor" : "student";
  if (fallback.size) return fallback.has("instructor") ? "instructor" : "student";
  return null;
}
