# chatmesh node image.
#
#   docker build -t chatmesh .
#   docker run --rm -p 8080:8080 chatmesh                 # one node, dev auth, web client on :8080
#   docker run --rm chatmesh node --help                  # every flag (also CHATMESH_* env vars)
#
# Two stages: `build` installs every dependency and compiles TypeScript to dist/; the runtime stage
# holds production dependencies only, plus the three things the node reads at run time:
#   dist/     the compiled code (entry point dist/cli.js)
#   proto/    dist/mesh/wire.js loads ../../proto/*.proto, i.e. /app/proto
#   src/web/  dist/http/static.js serves the web client from ../../src/web/, i.e. /app/src/web
# so the layout under /app must stay the repository's layout.

# ---------------------------------------------------------------------------------------------------
FROM node:20-bookworm-slim AS build
WORKDIR /app

# Dependencies first, so this layer is cached until the lockfile changes. --ignore-scripts skips the
# package's `prepare` script (`npm run build`), which would run here before the sources are copied;
# the build runs exactly once, below. No dependency needs an install script (protobufjs' postinstall
# only prints version warnings).
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts

# `npm run build` = proto-loader-gen-types (proto/ -> src/generated/) then tsc (src/ -> dist/).
COPY tsconfig.json ./
COPY proto/ ./proto/
COPY src/ ./src/
RUN npm run build

# ---------------------------------------------------------------------------------------------------
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app

# Production dependencies only. --ignore-scripts again: `prepare` would try to build, and the build
# tools (typescript) are dev dependencies that are not installed here.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
    && npm cache clean --force

COPY --from=build /app/dist/ ./dist/
COPY proto/ ./proto/
COPY src/web/ ./src/web/

# Files stay owned by root (read-only for the process); the node runs as the image's `node` user
# (uid 1000). Every port it listens on is above 1024, so it needs no capability.
USER node

# 8080 HTTP (WebSocket /ws, web client, /healthz, /metrics), 7070 mesh gRPC, 9090 admin gRPC.
EXPOSE 8080 7070 9090

# Ready = GET /healthz answers 200 (503 before readiness and while draining). Uses node's own fetch:
# the slim image has no curl or wget.
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.CHATMESH_HTTP_PORT||8080)+'/healthz',{signal:AbortSignal.timeout(3000)}).then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))"]

# node is PID 1 and handles SIGTERM itself: `docker stop` drains the node (clients get close 1012
# and reconnect elsewhere) and it exits 0.
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["node", "--host", "0.0.0.0"]
