#!/usr/bin/env bash
# Stages .tmp/stage/server/, everything Dockerfile.server copies: app/ holds
# the TypeScript sources run by tsx as `npm start` does, the migrations and the
# production node_modules taken from this checkout's `npm ci` (native modules
# included, built for this host's node and glibc); data/ is the empty database folder.
source "$(dirname "$0")/lib.sh"
stage=.tmp/stage/server
rm -rf "$stage"
mkdir -p "$stage/app" "$stage/data"
cp package.json tsconfig.json "$stage/app/"
cp -R server migrations "$stage/app/"
find "$stage/app/server" -name '*.test.ts' -delete
node --import tsx scripts/ci/stage-deps.ts package.json "$stage/app" >&2
ci_log "staged $stage ($(du -sh "$stage" | cut -f1))"
