/*
 * The dead-man's switch (watchdog.url in coordinator.yaml): the coordinator calls a URL of an
 * outside service (healthchecks-style: a GET every watchdog.interval) while it and its database
 * are healthy. When Vigil itself is down — the process dead or hung, or its database gone — the
 * calls stop and that service pages, as Alertmanager's always-firing `Watchdog` alert does for
 * Prometheus.
 *
 * A thread of its own calls the URL, so a slow or dead receiver never holds the main loop; the
 * main loop only says whether the store answers (watchdog_set_healthy, each tick). A call is
 * made only when the last word from the main loop is "healthy" and at most interval old: a main
 * loop that hangs stops the calls too. Counted in vigil_watchdog_calls_total{result}.
 */
#ifndef COORD_WATCHDOG_H
#define COORD_WATCHDOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct watchdog watchdog_t;

/* Starts the thread (url copied). NULL with err set when it cannot. */
watchdog_t *watchdog_start(const char *url, int64_t interval_ms, char *err, size_t errlen);
/* Stops the thread (an unfinished call is cancelled) and frees. Accepts NULL. */
void watchdog_destroy(watchdog_t **self_p);

/* The main loop's word, each tick: the coordinator and its store are healthy now. */
void watchdog_set_healthy(watchdog_t *self, bool healthy);

#endif
