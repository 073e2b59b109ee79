#!/usr/bin/env bash
# Stage "test": types, then every test (the Docker suites skip themselves without a swarm and docker-registry).
source "$(dirname "$0")/lib.sh"
npm run --silent typecheck
npm test
