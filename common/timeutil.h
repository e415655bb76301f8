/* Clocks: wall time for timestamps that leave the process, monotonic time for deadlines. */
#ifndef VG_TIMEUTIL_H
#define VG_TIMEUTIL_H

#include <stdint.h>

int64_t vg_wall_ms(void); /* CLOCK_REALTIME, Unix milliseconds */
int64_t vg_mono_ms(void); /* CLOCK_MONOTONIC milliseconds */

#endif
