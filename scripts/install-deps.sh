#!/usr/bin/env bash
# Installs the Debian packages kvd needs that a fresh machine may lack. Safe to run repeatedly:
# it only calls apt-get when something is missing.
#
#   scripts/install-deps.sh                  what building and testing kvd needs
#   scripts/install-deps.sh client-compat    also what scripts/client-compat.sh needs: redis-cli,
#                                            ruby-redis and a venv with redis-py 8 (its path is
#                                            KVD_CLIENT_VENV, default ~/.cache/kvd-client-venv)
set -euo pipefail

# install_packages PACKAGE...: apt-get install of those not installed yet, saying which.
install_packages() {
    local missing=() package
    for package in "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    if ((${#missing[@]})); then
        echo "install-deps: installing ${missing[*]}"
        local sudo_cmd=()
        [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
        "${sudo_cmd[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
    fi
}

# install_client_compat: the clients scripts/client-compat.sh drives. redis-py comes from PyPI
# into a venv of its own (Debian's python3-redis is 4.x; the check is for the 8.x that
# applications install), pinned to 8.x; the venv is kept, so later runs need no network.
install_client_compat() {
    install_packages redis-tools ruby ruby-redis
    local venv=${KVD_CLIENT_VENV:-$HOME/.cache/kvd-client-venv}
    # Debian's python3 needs python3-venv for `python3 -m venv`; other builds carry ensurepip.
    python3 -c 'import ensurepip' 2>/dev/null || install_packages python3-venv
    if ! "$venv/bin/python" -c 'import redis, sys; sys.exit(redis.__version__.split(".")[0] != "8")' 2>/dev/null; then
        echo "install-deps: installing redis>=8,<9 (PyPI) into $venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check 'redis>=8,<9'
    fi
}

install_packages libsqlite3-dev pkg-config redis-tools
case ${1:-} in
    "") ;;
    client-compat) install_client_compat ;;
    *) echo "install-deps: unknown argument '$1' (none, or client-compat)" >&2; exit 2 ;;
esac
