/*
 * Fuzz target: an answer of Prometheus's GET /api/v1/query as the PromQL poller reads it
 * (promql_parse_response in coordinator/incidents/promql.c). Whatever the configured URL
 * answers, or whoever sits in between, reaches it.
 *
 * Oracles beyond "no crash, no sanitizer report": the answer is always one of the three
 * documented kinds; a value is never NaN (NaN is "no data"); a failure names one of the
 * documented reasons and carries a terminated message.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "promql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct promql_parsed p;
    memset(&p, 0xa5, sizeof(p));
    promql_parse_response((const char *)data, size, &p);
    switch (p.answer) {
    case PROMQL_VALUE:
        if (isnan(p.value))
            abort();
        break;
    case PROMQL_NO_DATA:
        break;
    case PROMQL_FAILED:
        if (!p.reason ||
            (strcmp(p.reason, "query") != 0 && strcmp(p.reason, "series") != 0 &&
             strcmp(p.reason, "result_type") != 0 && strcmp(p.reason, "malformed") != 0))
            abort();
        if (memchr(p.message, '\0', sizeof(p.message)) == NULL)
            abort();
        break;
    default:
        abort();
    }
    return 0;
}
