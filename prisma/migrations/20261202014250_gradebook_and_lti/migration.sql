-- CreateEnum
CREATE TYPE "EnrollmentSource" AS ENUM ('api', 'lti', 'roster');

-- CreateEnum
CREATE TYPE "RegradeStatus" AS ENUM ('pending', 'running', 'done');

-- CreateEnum
CREATE TYPE "PassbackStatus" AS ENUM ('pending', 'sent', 'dead');

-- AlterEnum
ALTER TYPE "TokenKind" ADD VALUE 'integration';

-- AlterTable
ALTER TABLE "ApiToken" ADD COLUMN     "courseId" UUID,
ADD COLUMN     "scope" TEXT;

-- AlterTable
ALTER TABLE "Assignment" ADD COLUMN     "countPrecheckRejections" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "countRunRejections" BOOLEAN NOT NULL DEFAULT true,
ADD COLUMN     "lateSteps" JSONB,
ADD COLUMN     "lmsAssignmentId" TEXT,
ADD COLUMN     "revisionId" UUID,
ADD COLUMN     "timeLimitMinutes" INTEGER;

-- Existing assignments are pinned to their set's latest revision: what they graded against until now.
UPDATE "Assignment" a SET "revisionId" = (
  SELECT r.id FROM "ProblemSetRevision" r WHERE r."problemSetId" = a."problemSetId" ORDER BY r.revision DESC LIMIT 1
);
ALTER TABLE "Assignment" ALTER COLUMN "revisionId" SET NOT NULL;

-- AlterTable
ALTER TABLE "Enrollment" ADD COLUMN     "source" "EnrollmentSource" NOT NULL DEFAULT 'api';

-- CreateTable
CREATE TABLE "Extension" (
    "assignmentId" UUID NOT NULL,
    "userId" UUID NOT NULL,
    "dueAt" TIMESTAMP(3),
    "lateUntil" TIMESTAMP(3),
    "extraAttempts" INTEGER NOT NULL DEFAULT 0,
    "extraMinutes" INTEGER NOT NULL DEFAULT 0,
    "grantedById" UUID,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Extension_pkey" PRIMARY KEY ("assignmentId","userId")
);

-- CreateTable
CREATE TABLE "ExamStart" (
    "assignmentId" UUID NOT NULL,
    "userId" UUID NOT NULL,
    "startedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ExamStart_pkey" PRIMARY KEY ("assignmentId","userId")
);

-- CreateTable
CREATE TABLE "ScoreOverride" (
    "id" UUID NOT NULL,
    "submissionId" UUID NOT NULL,
    "score" DOUBLE PRECISION NOT NULL,
    "comment" TEXT,
    "byId" UUID,
    "groupId" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "clearedAt" TIMESTAMP(3),
    "clearedById" UUID,

    CONSTRAINT "ScoreOverride_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Regrade" (
    "id" UUID NOT NULL,
    "assignmentId" UUID NOT NULL,
    "problemSlug" TEXT,
    "userId" UUID,
    "submissionId" UUID,
    "clearOverrides" BOOLEAN NOT NULL DEFAULT false,
    "requestedById" UUID,
    "status" "RegradeStatus" NOT NULL DEFAULT 'pending',
    "total" INTEGER NOT NULL DEFAULT 0,
    "before" JSONB,
    "changes" JSONB,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "finishedAt" TIMESTAMP(3),

    CONSTRAINT "Regrade_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "RegradeItem" (
    "regradeId" UUID NOT NULL,
    "submissionId" UUID NOT NULL,
    "run" INTEGER NOT NULL,

    CONSTRAINT "RegradeItem_pkey" PRIMARY KEY ("regradeId","submissionId")
);

-- CreateTable
CREATE TABLE "LtiPlatform" (
    "id" UUID NOT NULL,
    "issuer" TEXT NOT NULL,
    "clientId" TEXT NOT NULL,
    "deploymentIds" TEXT[],
    "authLoginUrl" TEXT NOT NULL,
    "authTokenUrl" TEXT NOT NULL,
    "jwksUrl" TEXT NOT NULL,
    "name" TEXT,
    "registeredBy" TEXT NOT NULL DEFAULT 'api',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "disabledAt" TIMESTAMP(3),

    CONSTRAINT "LtiPlatform_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "LtiKey" (
    "kid" TEXT NOT NULL,
    "publicJwk" JSONB NOT NULL,
    "privateJwk" JSONB NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "retiredAt" TIMESTAMP(3),

    CONSTRAINT "LtiKey_pkey" PRIMARY KEY ("kid")
);

-- CreateTable
CREATE TABLE "LtiState" (
    "state" TEXT NOT NULL,
    "nonce" TEXT NOT NULL,
    "platformId" UUID NOT NULL,
    "targetLinkUri" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expiresAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "LtiState_pkey" PRIMARY KEY ("state")
);

-- CreateTable
CREATE TABLE "LtiNonce" (
    "platformId" UUID NOT NULL,
    "nonce" TEXT NOT NULL,
    "expiresAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "LtiNonce_pkey" PRIMARY KEY ("platformId","nonce")
);

-- CreateTable
CREATE TABLE "LtiContext" (
    "id" UUID NOT NULL,
    "platformId" UUID NOT NULL,
    "contextId" TEXT NOT NULL,
    "courseId" UUID NOT NULL,
    "deploymentId" TEXT NOT NULL,
    "title" TEXT,
    "membershipsUrl" TEXT,
    "lineItemsUrl" TEXT,
    "scopes" TEXT[],
    "lastRosterSync" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "LtiContext_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "LtiUser" (
    "platformId" UUID NOT NULL,
    "sub" TEXT NOT NULL,
    "userId" UUID NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "LtiUser_pkey" PRIMARY KEY ("platformId","sub")
);

-- CreateTable
CREATE TABLE "LtiResourceLink" (
    "platformId" UUID NOT NULL,
    "resourceLinkId" TEXT NOT NULL,
    "assignmentId" UUID,
    "contextRowId" UUID,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "LtiResourceLink_pkey" PRIMARY KEY ("platformId","resourceLinkId")
);

-- CreateTable
CREATE TABLE "LtiLineItem" (
    "id" UUID NOT NULL,
    "contextRowId" UUID NOT NULL,
    "assignmentId" UUID NOT NULL,
    "url" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "LtiLineItem_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ScorePassback" (
    "id" UUID NOT NULL,
    "contextRowId" UUID NOT NULL,
    "assignmentId" UUID NOT NULL,
    "userId" UUID NOT NULL,
    "scoreGiven" DOUBLE PRECISION NOT NULL,
    "scoreMaximum" DOUBLE PRECISION NOT NULL,
    "comment" TEXT,
    "status" "PassbackStatus" NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "lastStatus" INTEGER,
    "lastResponse" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "sentAt" TIMESTAMP(3),

    CONSTRAINT "ScorePassback_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "ScoreOverride_submissionId_createdAt_idx" ON "ScoreOverride"("submissionId", "createdAt");

-- CreateIndex
CREATE INDEX "Regrade_status_updatedAt_idx" ON "Regrade"("status", "updatedAt");

-- CreateIndex
CREATE INDEX "RegradeItem_submissionId_idx" ON "RegradeItem"("submissionId");

-- CreateIndex
CREATE UNIQUE INDEX "LtiPlatform_issuer_clientId_key" ON "LtiPlatform"("issuer", "clientId");

-- CreateIndex
CREATE INDEX "LtiState_expiresAt_idx" ON "LtiState"("expiresAt");

-- CreateIndex
CREATE INDEX "LtiNonce_expiresAt_idx" ON "LtiNonce"("expiresAt");

-- CreateIndex
CREATE INDEX "LtiContext_courseId_idx" ON "LtiContext"("courseId");

-- CreateIndex
CREATE UNIQUE INDEX "LtiContext_platformId_contextId_key" ON "LtiContext"("platformId", "contextId");

-- CreateIndex
CREATE INDEX "LtiUser_userId_idx" ON "LtiUser"("userId");

-- CreateIndex
CREATE UNIQUE INDEX "LtiLineItem_contextRowId_assignmentId_key" ON "LtiLineItem"("contextRowId", "assignmentId");

-- CreateIndex
CREATE INDEX "ScorePassback_status_updatedAt_idx" ON "ScorePassback"("status", "updatedAt");

-- CreateIndex
CREATE INDEX "ScorePassback_assignmentId_userId_idx" ON "ScorePassback"("assignmentId", "userId");

-- AddForeignKey
ALTER TABLE "ApiToken" ADD CONSTRAINT "ApiToken_courseId_fkey" FOREIGN KEY ("courseId") REFERENCES "Course"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Assignment" ADD CONSTRAINT "Assignment_revisionId_fkey" FOREIGN KEY ("revisionId") REFERENCES "ProblemSetRevision"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Extension" ADD CONSTRAINT "Extension_assignmentId_fkey" FOREIGN KEY ("assignmentId") REFERENCES "Assignment"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Extension" ADD CONSTRAINT "Extension_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ExamStart" ADD CONSTRAINT "ExamStart_assignmentId_fkey" FOREIGN KEY ("assignmentId") REFERENCES "Assignment"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ExamStart" ADD CONSTRAINT "ExamStart_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ScoreOverride" ADD CONSTRAINT "ScoreOverride_submissionId_fkey" FOREIGN KEY ("submissionId") REFERENCES "Submission"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Regrade" ADD CONSTRAINT "Regrade_assignmentId_fkey" FOREIGN KEY ("assignmentId") REFERENCES "Assignment"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "RegradeItem" ADD CONSTRAINT "RegradeItem_regradeId_fkey" FOREIGN KEY ("regradeId") REFERENCES "Regrade"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "RegradeItem" ADD CONSTRAINT "RegradeItem_submissionId_fkey" FOREIGN KEY ("submissionId") REFERENCES "Submission"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "LtiContext" ADD CONSTRAINT "LtiContext_platformId_fkey" FOREIGN KEY ("platformId") REFERENCES "LtiPlatform"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "LtiContext" ADD CONSTRAINT "LtiContext_courseId_fkey" FOREIGN KEY ("courseId") REFERENCES "Course"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "LtiUser" ADD CONSTRAINT "LtiUser_platformId_fkey" FOREIGN KEY ("platformId") REFERENCES "LtiPlatform"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "LtiUser" ADD CONSTRAINT "LtiUser_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "LtiResourceLink" ADD CONSTRAINT "LtiResourceLink_platformId_fkey" FOREIGN KEY ("platformId") REFERENCES "LtiPlatform"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "LtiLineItem" ADD CONSTRAINT "LtiLineItem_contextRowId_fkey" FOREIGN KEY ("contextRowId") REFERENCES "LtiContext"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "LtiLineItem" ADD CONSTRAINT "LtiLineItem_assignmentId_fkey" FOREIGN KEY ("assignmentId") REFERENCES "Assignment"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ScorePassback" ADD CONSTRAINT "ScorePassback_contextRowId_fkey" FOREIGN KEY ("contextRowId") REFERENCES "LtiContext"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ScorePassback" ADD CONSTRAINT "ScorePassback_assignmentId_fkey" FOREIGN KEY ("assignmentId") REFERENCES "Assignment"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ScorePassback" ADD CONSTRAINT "ScorePassback_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;
