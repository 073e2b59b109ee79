#!/usr/bin/env bash
# Stage "install": exactly the locked dependencies, their install scripts as package.json allows.
source "$(dirname "$0")/lib.sh"
npm ci --no-audit --no-fund
