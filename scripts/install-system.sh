#!/usr/bin/env bash
# Installs the Debian packages Ferry needs on a fresh Debian 12 machine: QEMU 10 / libvirt 11
# from bookworm-backports (Debian 12's QEMU 7.2 corrupts dirtying TCG guests during migration),
# the tools the lab builds guests with, PostgreSQL for the store tests, iperf3 for benchmarks,
# and Prometheus and Chromium for the observability tests (a real scrape, a real browser).
# Idempotent: a machine that already has everything is left alone in about a second.
set -euo pipefail

[ "$(id -u)" = 0 ] || { echo "install-system: must run as root (apt-get, namespaces)" >&2; exit 1; }

BACKPORTS_PKGS="qemu-system-x86 qemu-utils libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev"
PLAIN_PKGS="pkg-config gcc libc6-dev make iproute2 busybox-static cpio xz-utils zstd nftables iperf3 postgresql prometheus chromium"

have_all() {
    command -v libvirtd >/dev/null 2>&1 || return 1
    qemu-system-x86_64 --version 2>/dev/null | grep -Eq 'version (9|[1-9][0-9])\.' || return 1
    for p in $PLAIN_PKGS libvirt-dev; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || return 1
    done
}

if have_all; then
    echo "install-system: system packages already present"
    exit 0
fi

# Derive the backports source from the machine's own Debian source (same mirror URI and keyring),
# so no registry host name is written anywhere in the project.
src=/etc/apt/sources.list.d/debian.sources
bp=/etc/apt/sources.list.d/ferry-backports.sources
if [ ! -f "$bp" ]; then
    if [ -f "$src" ]; then
        uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' "$src")
        key=$(awk '/^Signed-By:/ {print $2; exit}' "$src")
    else
        uri=$(awk '$1=="deb" && $0 !~ /security/ {for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
        key=/usr/share/keyrings/debian-archive-keyring.gpg
    fi
    [ -n "$uri" ] || { echo "install-system: cannot find the machine's Debian mirror in $src" >&2; exit 1; }
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' "$uri" "$key" > "$bp"
fi

# Package postinst scripts try to start system daemons (libvirtd, postgresql); the lab and the
# test set-up start their own, so forbid that for the duration of the install.
prc=/usr/sbin/policy-rc.d
created_prc=0
if [ ! -e "$prc" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$prc"; chmod +x "$prc"; created_prc=1
fi
trap '[ $created_prc = 1 ] && rm -f "$prc"' EXIT

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Name each package as pkg/bookworm-backports so only these move to backports (a blanket
# `-t bookworm-backports` would drag systemd/udev along). The backports versions need some
# dependencies from backports too (qemu-system-common, seabios, ...): ask apt which, and name
# those as well, until the set resolves.
pkgs="$BACKPORTS_PKGS"
for _ in 1 2 3 4 5 6 7 8 9 10; do
    bp_args=""
    for p in $pkgs; do bp_args="$bp_args $p/bookworm-backports"; done
    # shellcheck disable=SC2086
    sim=$(apt-get install -s --no-install-recommends $bp_args $PLAIN_PKGS 2>&1 || true)
    missing=$(printf '%s\n' "$sim" | grep -oE '^ +([a-z0-9.+-]+ : )?Depends: [a-z0-9.+-]+' | awk '{print $NF}' | sort -u || true)
    [ -n "$missing" ] || break
    pkgs="$pkgs $(echo $missing)"
done
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $bp_args $PLAIN_PKGS
echo "install-system: done ($(qemu-system-x86_64 --version | head -1); libvirtd $(libvirtd --version | awk '{print $NF}'))"
