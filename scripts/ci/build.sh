#!/usr/bin/env bash
# Stage "build": stages the component on the host, then builds its image with
# no network inside the build. The result is tagged $IMAGE:ci-$BUILD_NUMBER
# for smoke.sh and tag.sh; it is never pushed under that name.
source "$(dirname "$0")/lib.sh"
ci_component
ci_image
bash "$PREPARE"
args=(build --network none --file "$DOCKERFILE" --tag "$CANDIDATE"
  --build-arg "APP_VERSION=${APP_VERSION:-$BUILD_NUMBER}"
  --label "org.opencontainers.image.revision=${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}")
# ghcr.io links a package to the repository this label names; GitHub then sends that repository's webhooks its pushes.
if [[ -n "${SOURCE_URL:-}" ]]; then args+=(--label "org.opencontainers.image.source=$SOURCE_URL"); fi
if [[ -n "${BASE_IMAGE:-}" ]]; then args+=(--build-arg "BASE=$BASE_IMAGE"); fi
started=$SECONDS
docker "${args[@]}" .
ci_log "built $CANDIDATE in $((SECONDS - started))s ($(docker image inspect --format '{{.Size}}' "$CANDIDATE" | awk '{printf "%.0f MB", $1/1e6}'))"
