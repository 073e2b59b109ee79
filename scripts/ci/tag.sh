#!/usr/bin/env bash
# Stage "tag": the build number always; `latest` too on the default branch.
source "$(dirname "$0")/lib.sh"
ci_image
while read -r tag; do
  docker tag "$CANDIDATE" "$tag"
  ci_log "tagged $tag"
done < <(ci_tags)
