#!/bin/sh
# `npm run bench` runs this: raise the open-files limit to what the machine allows (each
# connection is a file descriptor in a server and in the load generator), then the bench.
# The bench says in its output when the limit still cuts a scenario short.
hard=$(ulimit -Hn)
ulimit -n "$hard" 2>/dev/null || echo "bench: could not raise the open-files limit (ulimit -n $(ulimit -n), hard $hard)" >&2
cd "$(dirname "$0")/.." || exit 1
exec node_modules/.bin/bun bench/src/main.ts "$@"
