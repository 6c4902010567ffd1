#!/usr/bin/env bash
# Build the offline base image: a minimal Debian root filesystem with python3, made by debootstrap
# from the machine's Debian mirror and imported into Docker. No container registry is contacted.
# Usage: build-base.sh TAG [SUITE [LABEL=VALUE]]. Needs root (debootstrap) and a reachable Docker engine.
# RESTEM_DEBIAN_MIRROR overrides debootstrap's default mirror.
set -euo pipefail
tag=${1:?usage: build-base.sh TAG [SUITE]}
suite=${2:-bookworm}
label=${3:-org.restem.base-inputs=unknown}

if ! command -v debootstrap >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "build-base: debootstrap is missing; install it (apt-get install debootstrap)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq debootstrap >/dev/null
fi

rootfs=$(mktemp -d /var/tmp/restem-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
# minbase + python3: the interpreter with its standard library and nothing else to attack with
# (no compilers, no network tools).
log="$rootfs.log"
if ! debootstrap --variant=minbase --include=python3 "$suite" "$rootfs" ${RESTEM_DEBIAN_MIRROR:-} >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "build-base: debootstrap failed (full log: $log)" >&2
    exit 1
fi
rm -f "$log"
# Package caches only make the image bigger.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | docker import --change 'CMD ["/usr/bin/python3"]' --change "LABEL $label" - "$tag" >&2
echo "build-base: imported $tag" >&2
