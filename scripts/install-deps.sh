#!/usr/bin/env bash
# Installs the Debian packages kvd needs that a fresh machine may lack. Safe to run repeatedly:
# it only calls apt-get when something is missing.
set -euo pipefail

packages=(libsqlite3-dev pkg-config redis-tools)
missing=()
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
    echo "install-deps: installing ${missing[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
fi
