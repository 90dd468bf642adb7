-- AlterTable
ALTER TABLE "Grade" ADD COLUMN     "hashes" JSONB,
ADD COLUMN     "inputSeed" TEXT,
ADD COLUMN     "ortVersion" TEXT;

-- AlterTable
ALTER TABLE "Submission" ADD COLUMN     "modelSha256" TEXT;

-- AddForeignKey
ALTER TABLE "Submission" ADD CONSTRAINT "Submission_modelSha256_fkey" FOREIGN KEY ("modelSha256") REFERENCES "Blob"("sha256") ON DELETE SET NULL ON UPDATE CASCADE;
