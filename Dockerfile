# syntax=docker/dockerfile:1
# The base is an ARG so that the image can be built where registries cannot be reached
# (the test builds a local Debian base with debootstrap and this machine's node).
ARG NODE_IMAGE=docker.io/library/node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
# ssh2's native crypto binding (AES-GCM, chacha20-poly1305 in C) needs a compiler; without
# it npm silently falls back to the much slower JavaScript crypto.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# patch-package applies our ssh2 patches (patches/) on install.
COPY patches ./patches
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
# git runs the transfers; tini reaps what git leaves behind (see the README).
RUN apt-get update \
 && apt-get install -y --no-install-recommends git tini ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 git-sshd \
 && useradd --uid 10001 --gid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin git-sshd \
 && mkdir -p /data && chown 10001:10001 /data
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
ENV NODE_ENV=production \
    GIT_SSHD_DATA_DIR=/data \
    GIT_SSHD_WEB_LISTEN=0.0.0.0:9122 \
    HOME=/data
USER 10001:10001
EXPOSE 2222 9122
VOLUME ["/data"]
ENTRYPOINT ["/usr/bin/tini", "--", "node", "dist/main.js"]
