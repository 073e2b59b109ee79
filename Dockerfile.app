# The sample web app. Build with scripts/ci/build.sh (COMPONENT=web-app), which
# first stages .tmp/stage/web-app/ on the host (compiled JS, templates, the
# production node_modules from package-lock.json): nothing is installed or
# downloaded here, so `docker build --network none` works once BASE is present.
ARG BASE=node:20-bookworm-slim
FROM ${BASE}

WORKDIR /app
# Root-owned and world-readable: the app user can run the code but not rewrite it.
COPY .tmp/stage/web-app/ /app/

ENV NODE_ENV=production \
    PORT=5000
# Numeric, so the user is non-root even in a base without a passwd entry for it (1000 is `node` in node images).
USER 1000:1000
EXPOSE 5000

# Exec form with node: a base image may have no shell. http.get rather than fetch:
# loading fetch costs ~250 ms per probe. A refused connection, a timeout or any
# status but 200 exits 1, which docker counts as a failed probe.
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "require('http').get({host:'127.0.0.1',port:process.env.PORT||5000,path:'/healthz',timeout:2500},r=>process.exit(r.statusCode===200?0:1)).on('timeout',()=>process.exit(1)).on('error',()=>process.exit(1))"]

# Last, so a new version only adds this tiny config layer on top of cached ones.
ARG APP_VERSION=dev
ENV APP_VERSION=${APP_VERSION}
LABEL org.opencontainers.image.title="swarm sample web app" \
      org.opencontainers.image.version=${APP_VERSION}

CMD ["node", "main.js"]
