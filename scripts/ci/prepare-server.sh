#!/usr/bin/env bash
# Stages .tmp/stage/server/, everything Dockerfile.server copies: app/ holds
# dist/server.mjs, the bundle `npm start` runs, the migrations and the
# node_modules the bundle leaves external (better-sqlite3, native, as this
# checkout's `npm ci` built it for this host's node and glibc, and ssh2 for an
# ssh:// DOCKER_HOST); data/ is the empty database folder.
source "$(dirname "$0")/lib.sh"
stage=.tmp/stage/server
rm -rf "$stage"
mkdir -p "$stage/app" "$stage/data"
node --import tsx scripts/build-server.ts >&2
cp -R dist migrations "$stage/app/"
# The image's package.json names only what the bundle loads from node_modules (see scripts/build-server.ts).
node -e '
  const pkg = require("./package.json");
  const ssh2 = require("./package-lock.json").packages["node_modules/ssh2"].version;
  const dependencies = { "better-sqlite3": pkg.dependencies["better-sqlite3"], ssh2 };
  process.stdout.write(JSON.stringify({ name: pkg.name, version: pkg.version, private: true, dependencies }, null, 2) + "\n");
' >"$stage/app/package.json"
node --import tsx scripts/ci/stage-deps.ts "$stage/app/package.json" "$stage/app" >&2
ci_log "staged $stage ($(du -sh "$stage" | cut -f1))"
