-- AlterTable
ALTER TABLE "Submission" ADD COLUMN     "availableAt" TIMESTAMP(3),
ADD COLUMN     "claimedBy" TEXT,
ADD COLUMN     "leaseUntil" TIMESTAMP(3);

-- CreateIndex
CREATE INDEX "Submission_status_leaseUntil_idx" ON "Submission"("status", "leaseUntil");
