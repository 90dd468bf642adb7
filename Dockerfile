# One image for the API and the workers; the command picks the role (api | worker | all).
FROM node:20-bookworm-slim
WORKDIR /app
# onnxruntime-node's CUDA download is skipped by .npmrc; build with --build-arg ORT_INSTALL=cuda12 on a GPU host.
ARG ORT_INSTALL=skip
ENV ONNXRUNTIME_NODE_INSTALL=${ORT_INSTALL}
COPY package.json package-lock.json .npmrc prisma.config.ts ./
COPY prisma ./prisma
RUN npm ci
COPY . .
ENV NODE_ENV=production PORT=3000
EXPOSE 3000
CMD ["sh", "-c", "npm run db:migrate && npx tsx src/main.ts all"]
