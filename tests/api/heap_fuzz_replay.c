/* SPDX-License-Identifier: MIT */
/*
 * The heap fuzz target's entry point replayed over its seed corpus (and
 * simple mutations of it) in every build, without libFuzzer: hostile
 * heaps are checked on every test run. See tests/fuzz/fuzz_heap.c.
 */
#include "../fuzz/fuzz_heap.c"
