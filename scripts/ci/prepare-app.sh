#!/usr/bin/env bash
# Stages .tmp/stage/web-app/, everything Dockerfile.app copies: the web app
# compiled to JavaScript (a type error stops here), its templates, its
# manifest, and its production node_modules taken from this checkout's
# `npm ci`, so the image runs the bytes the tests ran and the build needs no network.
source "$(dirname "$0")/lib.sh"
stage=.tmp/stage/web-app
rm -rf "$stage"
mkdir -p "$stage"
node_modules/.bin/tsc -p web-app/tsconfig.build.json --outDir "$stage"
cp -R web-app/templates "$stage/templates"
cp web-app/package.json "$stage/package.json"
node --import tsx scripts/ci/stage-deps.ts web-app/package.json "$stage" >&2
ci_log "staged $stage ($(du -sh "$stage" | cut -f1))"
