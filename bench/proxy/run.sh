#!/usr/bin/env bash
# Runs moorage's proxy benchmark in one command, from anywhere in the repo:
#
#   bench/proxy/run.sh                      # 3 runs of 10s per measurement
#   bench/proxy/run.sh -runs 5 -duration 20s
#   bench/proxy/run.sh -tls -conns 32       # the same over HTTPS (TLS 1.3,
#                                           # X25519, ECDSA P-256), plus new
#                                           # TLS connections per second
#
# It measures side by side the backend direct, moorage's proxy (the
# proxy stack of `moorage server`: edge, front and proxy with the server's
# defaults, GOMAXPROCS=1; see moorageproxy/main.go) and nginx (one worker,
# upstream keep-alive), each proxy pinned to CPU 1, the load generator and
# the backend (one process) to CPU 0; see compare/main.go. It needs Go, two
# CPUs, taskset (util-linux) and nginx from the distribution's packages
# (Debian: apt-get install -y nginx); it installs nothing itself.
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() { echo "bench/proxy/run.sh: $*" >&2; exit 1; }

NGINX=${NGINX:-$(command -v nginx || true)}
[ -z "$NGINX" ] && [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx
[ -n "$NGINX" ] || fail "nginx is not installed (Debian: apt-get install -y nginx)"
command -v taskset >/dev/null || fail "taskset is not installed (Debian: util-linux)"
command -v go >/dev/null || fail "go is not on PATH"
[ "$(nproc --all)" -ge 2 ] || fail "needs at least 2 CPUs"

BIN=$(mktemp -d "${TMPDIR:-/tmp}/moorage-bench-bin.XXXXXX")
trap 'rm -rf "$BIN"' EXIT
go build -o "$BIN/" ./bench/proxy/moorageproxy ./bench/proxy/compare
cp bench/proxy/nginx.conf.tmpl "$BIN/"

echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (the measurements are only meaningful on an otherwise idle machine)"
GOMAXPROCS=2 taskset -c 0 "$BIN/compare" -bin "$BIN" -nginx "$NGINX" "$@"
