/*
 * incident-inject: feeds one symptom to the incident API against a coordinator's database,
 * standing in for the rule engine until it is wired in. Prints the incident id and outcome.
 *
 *   incident-inject CONNINFO FINGERPRINT RUNBOOK SEVERITY critical|warning|ok TITLE [NODE...]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incidents.h"
#include "log.h"
#include "timeutil.h"

#define REOPEN_WINDOW_MS (INT64_C(30) * 60 * 1000)

static const char *outcome_name(enum incident_outcome outcome)
{
    switch (outcome) {
    case INCIDENT_OPENED:
        return "opened";
    case INCIDENT_REOPENED:
        return "reopened";
    case INCIDENT_UPDATED:
        return "updated";
    case INCIDENT_ATTACHED:
        return "attached";
    default:
        return "unchanged";
    }
}

int main(int argc, char **argv)
{
    vg_log_init("incident-inject", VG_LOG_WARN, false);
    if (argc < 7) {
        fprintf(stderr, "usage: incident-inject CONNINFO FINGERPRINT RUNBOOK SEVERITY "
                        "critical|warning|ok TITLE [NODE...]\n");
        return 2;
    }
    struct incident_symptom s = {
        .fingerprint = argv[2],
        .runbook = argv[3],
        .severity = (int)strtol(argv[4], NULL, 10),
        .title = argv[6],
        .reason = "injected by incident-inject",
        .nodes = (const char *const *)(argv + 7),
        .n_nodes = (size_t)(argc - 7),
        .nodes_firing = (uint32_t)(argc - 7),
        .nodes_total = (uint32_t)(argc - 7),
        .at_ms = vg_wall_ms(),
        .reopen_window_ms = REOPEN_WINDOW_MS,
    };
    if (strcmp(argv[5], "critical") == 0)
        s.state = INCIDENT_SYMPTOM_CRITICAL;
    else if (strcmp(argv[5], "warning") == 0)
        s.state = INCIDENT_SYMPTOM_WARNING;
    else if (strcmp(argv[5], "ok") == 0)
        s.state = INCIDENT_SYMPTOM_OK;
    else {
        fprintf(stderr, "incident-inject: state must be critical, warning or ok\n");
        return 2;
    }
    store_incidents_t *store = store_incidents_new(argv[1]);
    struct incident_result res;
    int r = store ? incidents_on_symptom(store, &s, &res) : -ENOMEM;
    store_incidents_destroy(&store);
    if (r < 0) {
        fprintf(stderr, "incident-inject: %s\n", strerror(-r));
        return 1;
    }
    printf("%" PRIu64 " %s\n", res.id, outcome_name(res.outcome));
    return 0;
}
