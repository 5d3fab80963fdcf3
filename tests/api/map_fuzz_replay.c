/* SPDX-License-Identifier: MIT */
/*
 * The map fuzz target's entry point replayed over its seed corpus (and
 * simple mutations of it) in every build, without libFuzzer: hostile
 * maps are checked on every test run. See tests/fuzz/fuzz_map.c.
 */
#include "../fuzz/fuzz_map.c"
