-- AlterTable
ALTER TABLE "Grade" ADD COLUMN     "isolation" JSONB;
