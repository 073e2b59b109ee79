#!/usr/bin/env bash
# Stage "push": logs in when credentials are given (a local registry needs
# none), then pushes the tags tag.sh made. The password goes through stdin,
# never the command line.
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
