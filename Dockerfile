# session-timeout-proxy — sidecar in front of an Altair Panopticon server.
# Build:  docker build -t session-timeout-proxy .
# Run:    docker run --stop-timeout 20 -p 3000:3000 -e PROXY_UPSTREAM=http://panopticon:8080 \
#           -v /etc/panopticon/appdata/Panopticon.properties:/config/Panopticon.properties:ro \
#           -v stp-state:/data session-timeout-proxy
#
# BASE_IMAGE: any Debian-based image with Node.js 24 (node, npm) and a `node` user. CI, which
# cannot reach an image registry, assembles one locally (.ci/container/base-image.sh).
# Behind an HTTPS-intercepting proxy, hand its CA bundle to `npm ci` as a build secret; it is
# mounted in the build stage only and never lands in a layer:
#   docker build --secret id=npm_ca,src=/etc/ssl/certs/ca-certificates.crt -t session-timeout-proxy .
ARG BASE_IMAGE=node:24-bookworm-slim

# ---- build stage: dev dependencies, TypeScript compile -------------------------------------
FROM ${BASE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=npm_ca,required=false \
    if [ -s /run/secrets/npm_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm_ca; fi; \
    npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

# ---- run stage: production dependencies only, non-root, read-only friendly ---------------
FROM ${BASE_IMAGE}
ENV NODE_ENV=production \
    PROXY_HOST=0.0.0.0 \
    PROXY_PORT=3000 \
    PROXY_PROPERTIES=/config/Panopticon.properties \
    PROXY_STATE_DIR=/data \
    PROXY_ADMIN_PORT=9090
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY config/simulator-users.json ./config/simulator-users.json
# /data holds the saved session state (mode 0600); it must be a writable volume.
RUN mkdir -p /data /config && chown node:node /data
VOLUME ["/data"]
USER node
EXPOSE 3000 9090
# The main listener answers its own health under an internal prefix; no curl needed.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PROXY_PORT||3000)+'/_session-timeout-proxy/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/main.js"]
