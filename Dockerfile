# runmesh in a container: `docker build -t runmesh .` at the repository root.
# The build stage installs everything and builds dist/ (TypeScript and the web
# console); the runtime stage gets the production dependencies and the built
# files only, and runs as an unprivileged user. The image serves both roles:
#   docker run runmesh                  a control-plane peer (the CMD below)
#   docker run runmesh agent --server … an agent (see deploy/kubernetes/agents.yaml
#                                        for what an agent needs: root, cgroups)

FROM node:20-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build before the sources are here; it runs below.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:20-slim
ENV NODE_ENV=production
# bubblewrap: the agent's sandboxed executor. Nothing else: node's own CA bundle serves TLS.
# runmesh runs the server; runmesh-job is the user an agent started as root runs jobs as (--job-user).
RUN apt-get update \
  && apt-get install -y --no-install-recommends bubblewrap \
  && rm -rf /var/lib/apt/lists/* \
  && groupadd --system --gid 10001 runmesh \
  && useradd --system --uid 10001 --gid runmesh --home-dir /var/lib/runmesh --shell /usr/sbin/nologin runmesh \
  && useradd --system --uid 10002 --user-group --no-create-home --shell /usr/sbin/nologin runmesh-job \
  && install -d -o runmesh -g runmesh -m 0700 /var/lib/runmesh
WORKDIR /opt/runmesh
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/bin ./bin
COPY --from=build /src/proto/runmesh ./proto/runmesh
COPY --from=build /src/dist/agent ./dist/agent
COPY --from=build /src/dist/cli ./dist/cli
COPY --from=build /src/dist/console ./dist/console
COPY --from=build /src/dist/control-plane ./dist/control-plane
COPY --from=build /src/dist/proto ./dist/proto
COPY --from=build /src/dist/routing ./dist/routing
COPY --from=build /src/dist/transport ./dist/transport
RUN ln -s /opt/runmesh/bin/runmesh.js /usr/local/bin/runmesh
USER runmesh
VOLUME /var/lib/runmesh
# gRPC (clients, agents, peers) and HTTP (/healthz, /readyz, /metrics, the console, the agent WebSocket tunnel).
EXPOSE 7433 7434
# The server's liveness on its HTTP port; an agent container has none: run it with --no-healthcheck.
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:7434/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/opt/runmesh/bin/runmesh.js"]
# 0.0.0.0 is what other containers reach; a peer in a mesh listens on its own address instead (deploy/kubernetes/peers.yaml).
CMD ["server", "--listen", "0.0.0.0:7433", "--http-listen", "0.0.0.0:7434", "--data-dir", "/var/lib/runmesh"]
