-- DropIndex
DROP INDEX "Submission_userId_idempotencyKey_key";

-- AlterTable
ALTER TABLE "ProblemSet" ADD COLUMN     "deployment" BOOLEAN NOT NULL DEFAULT false;

-- AlterTable
ALTER TABLE "Submission" ADD COLUMN     "lastErrorCode" TEXT;

-- CreateTable
CREATE TABLE "ProblemSetOwner" (
    "problemSetId" UUID NOT NULL,
    "userId" UUID NOT NULL,
    "addedById" UUID,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ProblemSetOwner_pkey" PRIMARY KEY ("problemSetId","userId")
);

-- CreateTable
CREATE TABLE "Setting" (
    "key" TEXT NOT NULL,
    "value" JSONB NOT NULL,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Setting_pkey" PRIMARY KEY ("key")
);

-- CreateIndex
CREATE INDEX "ProblemSetOwner_userId_idx" ON "ProblemSetOwner"("userId");

-- CreateIndex
CREATE UNIQUE INDEX "Submission_userId_assignmentId_problemSlug_idempotencyKey_key" ON "Submission"("userId", "assignmentId", "problemSlug", "idempotencyKey");

-- AddForeignKey
ALTER TABLE "ProblemSetOwner" ADD CONSTRAINT "ProblemSetOwner_problemSetId_fkey" FOREIGN KEY ("problemSetId") REFERENCES "ProblemSet"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ProblemSetOwner" ADD CONSTRAINT "ProblemSetOwner_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Existing data: sets ever loaded from problems/ belong to the deployment, and an uploaded set is owned by
-- whoever uploaded its revisions.
UPDATE "ProblemSet" SET "deployment" = true
  WHERE "id" IN (SELECT "problemSetId" FROM "ProblemSetRevision" WHERE "source" = 'directory');
INSERT INTO "ProblemSetOwner" ("problemSetId", "userId")
  SELECT DISTINCT r."problemSetId", r."uploadedById" FROM "ProblemSetRevision" r
  JOIN "User" u ON u."id" = r."uploadedById"
  WHERE r."source" = 'upload'
  ON CONFLICT DO NOTHING;
