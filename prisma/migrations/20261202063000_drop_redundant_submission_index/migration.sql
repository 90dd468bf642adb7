-- (assignmentId, userId) is the prefix of the unique (assignmentId, userId, problemSlug, attempt) index, which serves
-- the same lookups. Every grading status change rewrote entries in both (issue 12).
DROP INDEX "Submission_assignmentId_userId_idx";
