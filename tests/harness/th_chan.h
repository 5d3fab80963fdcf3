/* SPDX-License-Identifier: MIT */
/* Channel options for tests: the three that tests vary, the rest default. */
#ifndef SHMKIT_TH_CHAN_H
#define SHMKIT_TH_CHAN_H

#include <shmkit.h>

static inline struct shmkit_chan_opts
th_chan_opts(uint64_t capacity, uint64_t max_msg, uint32_t producers)
{
	struct shmkit_chan_opts o = {.sz = sizeof(o)};

	o.capacity_bytes = capacity;
	o.max_msg_bytes = max_msg;
	o.max_producers = producers;
	return o;
}

#endif /* SHMKIT_TH_CHAN_H */
