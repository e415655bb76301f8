/*
 * Fuzz target: common/utf8.c, which every text an agent reads from the machine (mount points,
 * process names) and every text the coordinator keeps from an agent goes through.
 *
 * Oracles: escaping always yields valid UTF-8 that fits its buffer; an input that is valid is
 * copied unchanged; cutting never ends inside a character.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char text[4097];
    memcpy(text, data, size);
    text[size] = '\0';
    size_t len = strlen(text);

    char out[4 * 4096 + 1];
    bool escaped = false;
    size_t n = vg_utf8_escape(text, out, sizeof(out), &escaped);
    if (n != strlen(out) || !vg_utf8_valid(out))
        abort();
    if (vg_utf8_valid(text) && (escaped || strcmp(out, text) != 0))
        abort();

    char small[7];
    vg_utf8_escape(text, small, sizeof(small), NULL);
    if (!vg_utf8_valid(small))
        abort();

    for (size_t max = 0; max <= len && max < 64; max++) {
        size_t cut = vg_utf8_cut(text, len, max);
        if (cut > max)
            abort();
        if (vg_utf8_valid(text)) {
            char prefix[65];
            memcpy(prefix, text, cut);
            prefix[cut] = '\0';
            if (!vg_utf8_valid(prefix))
                abort();
        }
    }
    return 0;
}
