/* SPDX-License-Identifier: MIT */
/*
 * The header fuzz target's entry point replayed over its seed corpus (and
 * simple mutations of it) in every build, without libFuzzer: the corpus is
 * checked on every test run. See tests/fuzz/fuzz_header.c.
 */
#include "../fuzz/fuzz_header.c"
