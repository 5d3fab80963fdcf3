#!/bin/sh
# SPDX-License-Identifier: MIT
# Install the baselines that shmkit-bench-heap and shmkit-bench-map compare
# against, from Debian: Boost.Interprocess headers (and g++ for the C++
# helper), LMDB, hiredis and redis-server. Reconfigure afterwards so that
# CMake finds them. Each one that is missing is skipped by the benchmarks
# with a note, so this is optional.
set -e
pkgs="g++ libboost-dev liblmdb-dev libhiredis-dev redis-server"
sudo=
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	--no-install-recommends $pkgs
