/* SPDX-License-Identifier: MIT */
/*
 * The channel fuzz target's entry point replayed over its seed corpus (and
 * simple mutations of it) in every build, without libFuzzer: hostile
 * channel state is checked on every test run. See tests/fuzz/fuzz_chan.c.
 */
#include "../fuzz/fuzz_chan.c"
