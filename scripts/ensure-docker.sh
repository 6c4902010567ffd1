#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine, idempotently.
#   1. the user's engine, if `docker info` reaches one (DOCKER_HOST honoured): nothing to do;
#   2. else, as root on Debian/Ubuntu: install docker.io if dockerd is missing, start dockerd in
#      the background (detached, so it outlives `make`) and wait until it answers.
# Anything else (not root, no apt) is reported and left to the user: exit 1.
set -euo pipefail

LOG=${RESTEM_DOCKERD_LOG:-/var/log/restem-dockerd.log}
WAIT_S=${RESTEM_DOCKERD_WAIT_S:-90}

answers() { docker info >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && answers; then
    echo "ensure-docker: engine reachable" >&2
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "ensure-docker: no Docker engine reachable and not root; start one (or set DOCKER_HOST)" >&2
    exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "ensure-docker: no dockerd and no apt-get; install Docker yourself" >&2
        exit 1
    fi
    echo "ensure-docker: installing docker.io" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq docker.io >/dev/null
fi

# A dockerd may already be starting (a concurrent make, or an earlier run still coming up):
# only start another when none runs, otherwise the second one fails on its pid file. The pid file
# is checked rather than pgrep, which a minimal Debian may lack.
pidfile=/var/run/docker.pid
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "ensure-docker: dockerd (pid $(cat "$pidfile")) is starting; waiting" >&2
else
    rm -f "$pidfile"  # left by a crashed dockerd, it would block the start
    echo "ensure-docker: starting dockerd (log: $LOG)" >&2
    setsid nohup dockerd >>"$LOG" 2>&1 </dev/null &
fi

for _ in $(seq "$WAIT_S"); do
    if answers; then
        echo "ensure-docker: engine ready" >&2
        exit 0
    fi
    sleep 1
done
echo "ensure-docker: dockerd did not answer within ${WAIT_S}s; last log lines:" >&2
tail -n 20 "$LOG" >&2 || true
exit 1
