#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Install test: checks an installed shmkit under PREFIX the way a user would
# consume it. Builds consumer.c and consumer.cpp with pkg-config and with
# CMake's find_package, runs them against PREFIX's library, and checks the
# installed artefacts: SONAME, exported symbols, the header alone under
# -pedantic as C11 and C++11, and the man pages.
#
# usage: tests/install/run.sh PREFIX      (after cmake --install ... --prefix PREFIX)
set -euo pipefail

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 PREFIX (an existing install prefix)" >&2
	exit 2
fi
prefix=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
CC=${CC:-cc}
CXX=${CXX:-c++}

work=$(mktemp -d "${TMPDIR:-/tmp}/shmkit-install-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

say() { printf '  install: %s\n' "$*"; }
die() { printf 'install test FAILED: %s\n' "$*" >&2; exit 1; }

# --- where things are ------------------------------------------------------
pc=$(find "$prefix" -path '*/pkgconfig/shmkit.pc' -print -quit)
[ -n "$pc" ] || die "no pkgconfig/shmkit.pc under $prefix"
libdir=$(dirname "$(dirname "$pc")")
[ -f "$prefix/include/shmkit.h" ] || die "no include/shmkit.h under $prefix"
[ -f "$prefix/include/shmkit/version.h" ] ||
	die "no include/shmkit/version.h under $prefix"
[ -f "$libdir/cmake/shmkit/shmkitConfig.cmake" ] ||
	die "no cmake/shmkit/shmkitConfig.cmake in $libdir"
say "prefix $prefix, libdir $libdir"

# --- the shared library: SONAME and exported symbols ----------------------
so=$(find "$libdir" -maxdepth 1 -name 'libshmkit.so.*.*' -type f -print -quit)
[ -n "$so" ] || die "no libshmkit.so.X.Y.Z in $libdir"
[ -e "$libdir/libshmkit.so" ] || die "no libshmkit.so link (for -lshmkit)"
[ -e "$libdir/libshmkit.a" ] || die "no static libshmkit.a"
soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libshmkit.so.0" ] || die "SONAME is '$soname', want libshmkit.so.0"
[ -e "$libdir/$soname" ] || die "no $soname link in $libdir"
say "SONAME $soname"

nm -D --defined-only "$so" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' |
	sort >"$work/exports"
[ -s "$work/exports" ] || die "no exported symbols in $so"
bad=$(grep -v '^shmkit_[a-z]' "$work/exports" || true)
[ -z "$bad" ] || die "exported symbols outside shmkit_* (or internal shmkit__*): $(tr '\n' ' ' <<<"$bad")"
unversioned=$(nm -D --defined-only "$so" | awk '$2 != "A" && $3 !~ /@@SHMKIT_/' || true)
[ -z "$unversioned" ] || die "exported symbols without a version node: $unversioned"
say "$(wc -l <"$work/exports") symbols exported, all shmkit_*, all versioned"

# --- the header on its own, strictest modes ------------------------------------
echo '#include <shmkit.h>' >"$work/hdr.c"
echo 'int shmkit_header_check_dummy;' >>"$work/hdr.c"
"$CC" -std=c11 -pedantic -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wvla -I"$prefix/include" -fsyntax-only \
	"$work/hdr.c" || die "<shmkit.h> under $CC -std=c11 -pedantic -Werror"
cp "$work/hdr.c" "$work/hdr.cpp"
"$CXX" -std=c++11 -pedantic -Wall -Wextra -Werror -I"$prefix/include" \
	-fsyntax-only "$work/hdr.cpp" ||
	die "<shmkit.h> under $CXX -std=c++11 -pedantic -Werror"
if command -v g++ >/dev/null && [ "$CXX" != g++ ]; then
	g++ -std=c++11 -pedantic -Wall -Wextra -Werror -I"$prefix/include" \
		-fsyntax-only "$work/hdr.cpp" ||
		die "<shmkit.h> under g++ -std=c++11 -pedantic -Werror"
fi
if command -v clang >/dev/null; then
	clang -std=c11 -pedantic -Wall -Wextra -Werror -I"$prefix/include" \
		-fsyntax-only "$work/hdr.c" ||
		die "<shmkit.h> under clang -std=c11 -pedantic -Werror"
fi
say "<shmkit.h> compiles alone as C11 and C++11 with -pedantic -Werror"

# --- pkg-config -------------------------------------------------------------------
PKG_CONFIG_PATH="$(dirname "$pc")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export PKG_CONFIG_PATH
pkg-config --exists shmkit || die "pkg-config does not find shmkit"
read -ra cflags <<<"$(pkg-config --cflags shmkit)"
read -ra libs <<<"$(pkg-config --libs shmkit)"
incdir=$(pkg-config --variable=includedir shmkit)
[ "$(cd "$incdir" && pwd)" = "$prefix/include" ] ||
	die "shmkit.pc includedir $incdir is not $prefix/include (not relocated?)"
say "pkg-config shmkit $(pkg-config --modversion shmkit): ${cflags[*]} ${libs[*]}"
"$CC" -std=c11 -Wall -Wextra -Werror "${cflags[@]}" "$here/consumer.c" \
	-o "$work/pc_c" "${libs[@]}" || die "pkg-config build of consumer.c"
"$CXX" -std=c++11 -Wall -Wextra -Werror "${cflags[@]}" "$here/consumer.cpp" \
	-o "$work/pc_cxx" "${libs[@]}" || die "pkg-config build of consumer.cpp"

# --- CMake find_package ---------------------------------------------------
cmake -S "$here" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
	-DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER="$CC" \
	-DCMAKE_CXX_COMPILER="$CXX" >"$work/cmake.log" 2>&1 ||
	{ cat "$work/cmake.log" >&2; die "find_package(shmkit) configure"; }
cmake --build "$work/cmake" -j2 >>"$work/cmake.log" 2>&1 ||
	{ cat "$work/cmake.log" >&2; die "find_package build"; }
say "find_package(shmkit) build OK (shared C, C++, static C)"

# --- run them all against the installed library ---------------------------------
run() {
	local exe=$1 lib
	lib=$(LD_LIBRARY_PATH="$libdir" ldd "$exe" | awk '/libshmkit/ { print $3 }')
	case "$exe:$lib" in
	*static:) ;;
	*static:*) die "$exe should not need libshmkit.so (got $lib)" ;;
	*:"$libdir"/*) ;;
	*:) die "$exe is not linked to libshmkit.so" ;;
	*) die "$exe resolves libshmkit to $lib, not to $libdir" ;;
	esac
	LD_LIBRARY_PATH="$libdir" "$exe" >"$work/out" 2>&1 ||
		{ cat "$work/out" >&2; die "running $exe"; }
	sed 's/^/    /' "$work/out"
}
for exe in "$work/pc_c" "$work/pc_cxx" "$work/cmake/consumer_c" \
	"$work/cmake/consumer_cxx" "$work/cmake/consumer_c_static"; do
	say "run $(basename "$(dirname "$exe")")/$(basename "$exe")"
	run "$exe"
done

# --- man pages: every installed page formats without warnings, .so links
# --- resolve, and man(1) finds each one by name -------------------------------
mandir="$prefix/share/man"
if [ -d "$mandir" ] && command -v groff >/dev/null && command -v man >/dev/null
then
	n=0
	for page in "$mandir"/man*/*; do
		[ -f "$page" ] || continue
		sect=${page##*.}
		name=$(basename "$page" ".$sect")
		# .so paths are relative to the top of the man tree.
		out=$(cd "$mandir" && groff -man -ww -z -Tutf8 \
			"${page#"$mandir"/}" 2>&1) || die "groff $page failed"
		[ -z "$out" ] || die "groff warnings in $page: $out"
		MANPATH="$mandir" MANWIDTH=80 man "$sect" "$name" 2>/dev/null |
			grep -q '^NAME' || die "man $sect $name: not found or no NAME"
		n=$((n + 1))
	done
	say "$n man pages format cleanly and are found by man (MANPATH=$mandir)"
fi
say "all checks passed"
