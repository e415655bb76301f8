#include "timeutil.h"

#include <time.h>

static int64_t clock_ms(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t vg_wall_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

int64_t vg_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}
