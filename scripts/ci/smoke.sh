#!/usr/bin/env bash
# Stage "smoke": runs the freshly built image on a random port of 127.0.0.1 and
# fails unless it runs as a non-root user, answers over HTTP (the web app with
# the version it was built with) and docker reports its own HEALTHCHECK healthy
# within SMOKE_TIMEOUT seconds (default 60). The container is removed either way.
source "$(dirname "$0")/lib.sh"
ci_component
ci_image
timeout_s="${SMOKE_TIMEOUT:-60}"
version="${APP_VERSION:-$BUILD_NUMBER}"

user="$(docker image inspect --format '{{.Config.User}}' "$CANDIDATE")"
case "${user%%:*}" in "" | 0 | root) ci_fail "$CANDIDATE runs as root (USER '$user')" ;; esac

name="smoke-$COMPONENT-$BUILD_NUMBER-$$-$RANDOM"
cleanup() { docker rm --force --volumes "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT
# The server gets no Docker socket: it must still start and answer (readiness then reports the engine missing).
docker run --detach --name "$name" --publish "127.0.0.1::$CONTAINER_PORT" "$CANDIDATE" >/dev/null
port="$(docker port "$name" "$CONTAINER_PORT/tcp" | head -n 1)"
port="${port##*:}"
url="http://127.0.0.1:$port"

fail() {
  ci_log "smoke test of $CANDIDATE failed: $*"
  docker logs --tail 40 "$name" >&2 || true
  exit 1
}

deadline=$((SECONDS + timeout_s))
answered=""
while :; do
  state="$(docker inspect --format '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$name")"
  case "$state" in
    running\ unhealthy) fail "docker reports the container unhealthy" ;;
    running*) ;;
    *) fail "the container stopped ($state)" ;;
  esac
  if [[ -z "$answered" ]] && curl --silent --fail --max-time 2 "$url/healthz" >/dev/null; then answered=yes; fi
  [[ -n "$answered" && "$state" == "running healthy" ]] && break
  ((SECONDS < deadline)) || fail "no healthy answer within ${timeout_s}s (state: $state, answered: ${answered:-no})"
  sleep 1
done

if [[ "$COMPONENT" == web-app ]]; then
  body="$(curl --silent --fail --max-time 5 "$url/version")" || fail "GET /version did not answer 200"
  [[ "$body" == *"\"version\":\"$version\""* ]] || fail "GET /version answered $body, expected version $version"
  curl --silent --fail --max-time 5 "$url/" | grep -q "$version" || fail "GET / does not show version $version"
fi
ci_log "smoke test passed: $CANDIDATE answered on $url and is healthy"
