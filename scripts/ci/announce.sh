#!/usr/bin/env bash
# Stage "announce" (optional): tells the deploy server about the tags push.sh
# pushed, one POST /hooks/ci per tag with the pushed digest as its hint and a
# webhook token whose repositories cover IMAGE. Without DEPLOYER_URL and
# DEPLOYER_WEBHOOK_TOKEN it does nothing: a registry whose own webhook reaches
# the server needs no announcement. The Idempotency-Key is derived from the tag
# and digest, so a retried call (curl's, or a re-run of the job) is a no-op.
# The token goes through a file descriptor, never the command line.
source "$(dirname "$0")/lib.sh"
ci_image
if [[ -z "${DEPLOYER_URL:-}" || -z "${DEPLOYER_WEBHOOK_TOKEN:-}" ]]; then
  ci_log "DEPLOYER_URL or DEPLOYER_WEBHOOK_TOKEN is not set: nothing announced"
  exit 0
fi
digest="${DIGEST:-$(ci_pushed_digest)}"
[[ -z "$digest" || "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] || ci_fail "DIGEST '$digest' is not a sha256 digest"
url="${DEPLOYER_URL%/}/hooks/ci"
while read -r tag; do
  if [[ -n "$digest" ]]; then
    body="$(printf '{"image":"%s","digest":"%s"}' "$tag" "$digest")"
    key="$(printf '%s@%s' "$tag" "$digest" | sha256sum | cut -c1-64)"
  else
    body="$(printf '{"image":"%s"}' "$tag")"
    key="$(printf '%s#%s' "$tag" "$BUILD_NUMBER" | sha256sum | cut -c1-64)"
  fi
  answer="$(curl --silent --show-error --fail-with-body --max-time 10 --retry 3 --retry-all-errors \
    --header @<(printf 'Authorization: Bearer %s\n' "$DEPLOYER_WEBHOOK_TOKEN") \
    --header "Content-Type: application/json" --header "Idempotency-Key: ci-$key" \
    --data "$body" "$url")" || ci_fail "POST $url for $tag failed: $answer"
  ci_log "announced $tag${digest:+@$digest}: $answer"
done < <(ci_tags)
