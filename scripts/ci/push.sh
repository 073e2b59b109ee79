#!/usr/bin/env bash
# Stage "push": logs in when credentials are given (a local registry needs
# none), then pushes the tags tag.sh made and reports the digest the registry
# stored (in $CI_OUTPUT too when set). The password goes through stdin, never
# the command line.
source "$(dirname "$0")/lib.sh"
ci_image
if [[ -n "${REGISTRY_USER:-}" ]]; then
  ci_require REGISTRY_PASSWORD
  # The registry is the first part of IMAGE when it looks like a host (has a dot or a port, or is localhost).
  first="${IMAGE%%/*}"
  if [[ "$IMAGE" == */* && ( "$first" == *.* || "$first" == *:* || "$first" == localhost ) ]]; then registry="$first"; else registry=docker.io; fi
  printf '%s' "$REGISTRY_PASSWORD" | docker login --username "$REGISTRY_USER" --password-stdin "$registry"
fi
while read -r tag; do
  docker push "$tag"
  ci_log "pushed $tag"
done < <(ci_tags)
digest="$(ci_pushed_digest)"
if [[ -n "$digest" ]]; then ci_log "digest $digest"; else ci_log "the engine recorded no digest for $IMAGE:$BUILD_NUMBER"; fi
if [[ -n "${CI_OUTPUT:-}" ]]; then printf 'image=%s\ndigest=%s\n' "$IMAGE" "$digest" >>"$CI_OUTPUT"; fi
