/* SPDX-License-Identifier: MIT */
/*
 * The replay driver shared by the fuzz targets built without libFuzzer:
 * each input of the target's seed corpus (tests/fuzz/corpus/NAME, or the
 * files named on the command line) is run through LLVMFuzzerTestOneInput(),
 * then once per simple mutation: every byte from `skip` on flipped, the
 * first of each 8 in its low bit (opcodes), the others in their top bit
 * (values). Include it after the target's LLVMFuzzerTestOneInput().
 */
#ifndef SHMKIT_FUZZ_REPLAY_H
#define SHMKIT_FUZZ_REPLAY_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int fuzz_replay_file(const char *file, size_t skip)
{
	struct stat st;
	uint8_t *buf;
	size_t size;
	FILE *f = fopen(file, "rb");

	if (!f) {
		perror(file);
		return 1;
	}
	if (fstat(fileno(f), &st) != 0) {
		perror(file);
		abort();
	}
	size = (size_t)st.st_size;
	buf = malloc(size ? size : 1);
	if (!buf || fread(buf, 1, size, f) != size) {
		perror(file);
		abort();
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, size);
	for (size_t i = skip; i < size; i++) {
		uint8_t keep = buf[i];

		buf[i] = (uint8_t)(keep ^ ((i - skip) % 8 == 0 ? 1 : 0x80));
		LLVMFuzzerTestOneInput(buf, size);
		buf[i] = keep;
	}
	free(buf);
	return 0;
}

/* main() of a replay build: 0 if every input ran, 1 if none was found. */
static int fuzz_replay_main(int argc, char **argv, const char *corpus,
			    size_t skip)
{
	char dir[4096];
	struct dirent **list;
	int n, bad = 0, count = 0;

	for (int i = 1; i < argc; i++, count++)
		bad |= fuzz_replay_file(argv[i], skip);
	if (argc > 1)
		return bad;
	snprintf(dir, sizeof(dir), "%.*s/corpus/%s",
		 (int)(strrchr(__FILE__, '/') - __FILE__), __FILE__, corpus);
	n = scandir(dir, &list, NULL, alphasort);
	if (n < 0) {
		perror(dir);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		char p[8192];

		if (list[i]->d_name[0] != '.') {
			snprintf(p, sizeof(p), "%s/%s", dir, list[i]->d_name);
			bad |= fuzz_replay_file(p, skip);
			count++;
		}
		free(list[i]);
	}
	free(list);
	fprintf(stderr, "replayed %d inputs\n", count);
	return bad || count == 0;
}

#endif /* SHMKIT_FUZZ_REPLAY_H */
