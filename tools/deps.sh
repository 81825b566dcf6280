#!/bin/sh
# Installs, with apt-get, exactly the Debian 12 packages Pacer's build, tests and
# benchmarks need. Idempotent: quiet and quick when everything is already there.
# Usage: tools/deps.sh [build|test|all]   (default: all)
set -eu

BUILD_PKGS="gcc make cmake pkg-config
        protobuf-c-compiler libprotobuf-c-dev
        libcurl4-openssl-dev libev-dev libmsgpack-dev libjansson-dev libmicrohttpd-dev
        libseccomp-dev libcap-dev libsqlite3-dev"

# Tests: cmocka for unit tests, pytest and protobuf (with protoc to generate the
# Python modules from proto/) for integration tests, clang-format-14 for the style
# check, xz to unpack ../shared/ext, procps for the process checks, openssl for
# the HTTPS check test's certificate. The
# relocatable Mesos build carries its own libraries.
TEST_PKGS="libcmocka-dev python3 python3-pytest python3-protobuf protobuf-compiler
        python3-msgpack clang-format-14 xz-utils procps curl openssl"

want=""
case "${1:-all}" in
build) want="$BUILD_PKGS" ;;
test | all) want="$BUILD_PKGS $TEST_PKGS" ;;
*)
        echo "usage: $0 [build|test|all]" >&2
        exit 2
        ;;
esac

missing=""
for p in $want; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
                missing="$missing $p"
        fi
done
[ -z "$missing" ] && exit 0

echo "deps: installing:$missing" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
                SUDO="sudo"
        else
                echo "deps: need root (or sudo) to install:$missing" >&2
                exit 1
        fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
