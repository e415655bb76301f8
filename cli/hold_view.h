/* A legal hold as vigilctl shows it (cmd_holds.c): for `vigilctl holds` and `incident show`. */
#ifndef CTL_HOLD_VIEW_H
#define CTL_HOLD_VIEW_H

#include <stddef.h>

#include <jansson.h>

#include "vigil.pb-c.h"

/* {"incident", "held", "by", "at", "reason", "title", "state", "artifacts", "bytes"}; NULL when
 * out of memory. */
json_t *hold_view_json(const Vigil__HoldInfo *h);
/* "on hold since TIME by ACTOR: REASON" or "released since ...", terminal-safe, into buf. */
void hold_view_line(const Vigil__HoldInfo *h, char *buf, size_t len);

#endif
