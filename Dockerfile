# One image for the API and the workers; the command picks the role (api | worker | all).
FROM node:20-bookworm-slim
# prlimit (memory cap), setpriv and unshare for the model sandbox: the worker refuses to start without prlimit.
RUN apt-get update && apt-get install -y --no-install-recommends util-linux && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# onnxruntime-node's CUDA download is skipped by .npmrc; build with --build-arg ORT_INSTALL=cuda12 on a GPU host.
ARG ORT_INSTALL=skip
ENV ONNXRUNTIME_NODE_INSTALL=${ORT_INSTALL}
COPY package.json package-lock.json .npmrc prisma.config.ts ./
COPY prisma ./prisma
RUN npm ci
COPY . .
ENV NODE_ENV=production PORT=3000
# Everything runs unprivileged: the code and node_modules stay root-owned and read-only to this user, and
# sandbox children run as it too (RLIMIT_NPROC binds only for a non-root account).
USER node
EXPOSE 3000
CMD ["sh", "-c", "npm run db:migrate && npx tsx src/main.ts all"]
