/*
 * Fuzz target: the request vigil-agent-action reads on stdin (svc_request_parse in
 * agent/action/request.c), "key\0value\0" pairs as the executor writes them, at most
 * SVC_REQUEST_MAX bytes as main.c reads them.
 *
 * Oracles beyond "no crash, no sanitizer report": a request that parses has one spelling — its
 * pairs written out again give back the input byte for byte; every key is non-empty, unique and
 * found again by svc_get; a refusal leaves no items counted; with room for fewer keys the same
 * input parses exactly when it has no more than that many.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "svc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct svc_kv items[SVC_REQUEST_KEYS_MAX], few[3];
    struct svc_request req = {items, 0};
    size_t n_few = 99;

    if (size > SVC_REQUEST_MAX)
        size = SVC_REQUEST_MAX; /* main.c refuses more before parsing */
    /* A copy of exactly size bytes, so ASan sees any read past the request. */
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);

    req.n = 99;
    int r = svc_request_parse(buf, size, items, SVC_REQUEST_KEYS_MAX, &req.n);
    int r_few = svc_request_parse(buf, size, few, 3, &n_few);
    if (r != 0 && r != -EINVAL)
        abort();
    if (r < 0) {
        if (req.n != 0 || r_few == 0)
            abort(); /* refused with room for 128 keys, yet parsed with room for 3 */
        free(buf);
        return 0;
    }
    if (req.n > SVC_REQUEST_KEYS_MAX || (r_few == 0) != (req.n <= 3) || (r_few < 0 && n_few))
        abort();

    size_t at = 0;
    for (size_t i = 0; i < req.n; i++) {
        const char *k = items[i].key, *v = items[i].value;
        size_t klen = strlen(k), vlen = strlen(v);
        if (klen == 0 || k != buf + at || v != k + klen + 1)
            abort(); /* not the next pair of the input */
        at += klen + 1 + vlen + 1;
        if (svc_get(&req, k) != v)
            abort(); /* a repeated key, or one svc_get does not find */
        if (r_few == 0 && (few[i].key != k || few[i].value != v))
            abort();
    }
    if (at != size)
        abort(); /* bytes of the input that are in no pair */
    free(buf);
    return 0;
}
