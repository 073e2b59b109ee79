# Shared by the scripts/ci stages; sourced, not run. Every input comes from the
# environment, so Travis, GitHub Actions and the end-to-end test (against a
# local registry) run the same commands:
#   COMPONENT     web-app | server
#   IMAGE         repository to publish to, with its registry: docker.io/acme/web-app, 127.0.0.1:5000/acme/web-app
#   BUILD_NUMBER  defaults to $TRAVIS_BUILD_NUMBER
#   BRANCH, DEFAULT_BRANCH (main), PULL_REQUEST: default to Travis's variables; decide the `latest` tag
#   COMMIT        the image's revision label; defaults to $TRAVIS_COMMIT, then git's HEAD
#   SOURCE_URL    the image's org.opencontainers.image.source label (the repository's URL) when set
#   REGISTRY_USER, REGISTRY_PASSWORD: log in before pushing when set
#   BASE_IMAGE    base image for both Dockerfiles (default node:20-bookworm-slim)
#   CI_OUTPUT     a file push.sh appends image= and digest= lines to (GitHub's $GITHUB_OUTPUT)
#   DEPLOYER_URL, DEPLOYER_WEBHOOK_TOKEN: where announce.sh reports the push (it does nothing without them)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

ci_log() { printf '[ci] %s\n' "$*" >&2; }
ci_fail() { ci_log "error: $*"; exit 1; }

ci_require() { # ci_require VAR...
  local v
  for v in "$@"; do [[ -n "${!v:-}" ]] || ci_fail "$v is not set"; done
}

BUILD_NUMBER="${BUILD_NUMBER:-${TRAVIS_BUILD_NUMBER:-}}"
BRANCH="${BRANCH:-${TRAVIS_BRANCH:-}}"
DEFAULT_BRANCH="${DEFAULT_BRANCH:-main}"
PULL_REQUEST="${PULL_REQUEST:-${TRAVIS_PULL_REQUEST:-false}}"
COMMIT="${COMMIT:-${TRAVIS_COMMIT:-}}"

ci_component() {
  ci_require COMPONENT
  case "$COMPONENT" in
    web-app) DOCKERFILE=Dockerfile.app PREPARE=scripts/ci/prepare-app.sh CONTAINER_PORT=5000 ;;
    server) DOCKERFILE=Dockerfile.server PREPARE=scripts/ci/prepare-server.sh CONTAINER_PORT=8080 ;;
    *) ci_fail "COMPONENT must be web-app or server, not '$COMPONENT'" ;;
  esac
}

ci_image() {
  ci_require IMAGE BUILD_NUMBER
  local last="${IMAGE##*/}"
  [[ "$last" != *[:@]* ]] || ci_fail "IMAGE must name a repository without tag or digest, not '$IMAGE'"
  [[ "$BUILD_NUMBER" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || ci_fail "BUILD_NUMBER '$BUILD_NUMBER' is not a valid tag"
  # The local name of the image between build and tag; never pushed.
  CANDIDATE="$IMAGE:ci-$BUILD_NUMBER"
}

# `latest` moves only for a push to the default branch, never for a pull request build.
ci_on_default_branch() {
  [[ "$PULL_REQUEST" == "false" && -n "$BRANCH" && "$BRANCH" == "$DEFAULT_BRANCH" ]]
}

# The tags a build publishes, one per line.
ci_tags() {
  echo "$IMAGE:$BUILD_NUMBER"
  if ci_on_default_branch; then echo "$IMAGE:latest"; fi
}

# The digest the registry answered for the build-number tag, as the engine
# recorded it after the push (it drops docker.io/ and library/ from the names
# it keeps); empty when it has none.
ci_pushed_digest() {
  local short="${IMAGE#docker.io/}" line
  short="${short#library/}"
  while read -r line; do
    case "$line" in "$IMAGE@"* | "$short@"*)
      echo "${line#*@}"
      return 0
      ;;
    esac
  done < <(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$IMAGE:$BUILD_NUMBER" 2>/dev/null || true)
}

# A docker CLI without the buildx plugin refuses to build while BuildKit is the
# default; the legacy builder then does the job (and honours --network none).
if [[ -z "${DOCKER_BUILDKIT:-}" ]] && ! docker buildx version >/dev/null 2>&1; then
  export DOCKER_BUILDKIT=0
fi
