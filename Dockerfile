# One image for the API and the workers; the command picks the role (api | worker | all).
# Build stage: dependencies with dev tools, the Prisma client generated, the server compiled to dist/.
FROM node:20-bookworm-slim AS build
WORKDIR /app
# onnxruntime-node's CUDA download is skipped by .npmrc; build with --build-arg ORT_INSTALL=cuda12 on a GPU host.
ARG ORT_INSTALL=skip
ENV ONNXRUNTIME_NODE_INSTALL=${ORT_INSTALL}
COPY package.json package-lock.json .npmrc prisma.config.ts ./
COPY prisma ./prisma
RUN npm ci
COPY . .
# Compiled JavaScript only at run time (no TypeScript loader), then the dev tools leave node_modules.
RUN npm run build && npm prune --omit=dev --ignore-scripts

FROM node:20-bookworm-slim
# prlimit (memory cap), setpriv and unshare for the model sandbox: the worker refuses to start without prlimit.
RUN apt-get update && apt-get install -y --no-install-recommends util-linux && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Read at run time: the migrations (dist/scripts/migrate.js) and the problem sets loaded at start.
COPY --from=build /app/prisma ./prisma
COPY --from=build /app/problems ./problems
ENV NODE_ENV=production PORT=3000
# Everything runs unprivileged: the code and node_modules stay root-owned and read-only to this user, and
# sandbox children run as it too (RLIMIT_NPROC binds only for a non-root account).
USER node
EXPOSE 3000
CMD ["sh", "-c", "node dist/scripts/migrate.js && exec node dist/src/main.js all"]
