/*
 * What a notification says: one subject line, a plain-text body for a person woken at 3 a.m.,
 * and the same facts as a JSON payload (the generic webhook's documented schema,
 * docs/notifications.md). Pure formatting: no I/O.
 */
#ifndef COORD_PAGE_MESSAGE_H
#define COORD_PAGE_MESSAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

struct page_message_in {
    const struct store_incident *inc;
    enum notification_kind kind;
    int level;                /* page: the escalation level (0 = first); else -1 */
    const char *responders;   /* "alice, bob" paged so far ("" = nobody yet) */
    const char *runbook_link; /* the runbook's doc link ("" = none) */
    int64_t now_ms;
    const char *steps; /* page_message_steps' text, appended to the body (NULL = none) */
    /* A page group (escalate.h, "Grouping"): how many nodes it has open, and their names
     * ("web-1, web-2", the first few); nodes_total <= 1 = not grouped. For a grouped message
     * (NOTIFICATION_KIND_GROUPED) the nodes that joined since the last message instead. */
    uint32_t nodes_total;
    const char *nodes;
    /* NOTIFICATION_KIND_ACTION: the automatic action and how it ended, one line. */
    const char *action;
    bool drill; /* a practice drill (vigilctl drill): marked [DRILL] wherever it is read */
    /* NOTIFICATION_KIND_HUMAN_UPDATE: "TEXT (by NAME)"; _REMINDER and the automatic _UPDATE: why
     * (no human update in the interval). After the headline, and "update" in the payload. */
    const char *note;
};

struct page_message {
    char *subject; /* "[SEV1] Application down (incident 14): paged, level 1" */
    char *body;
    char *payload_json;
};

struct rb_runbook;

/* The lines a page adds about the runbook's resolve steps (docs/remediation.md, "Runbook
 * steps"): "Automation is off" when it is, each step with what Vigil does with it, and the
 * requests that wait for approval (pending: "ID ACTION on NODE, ..." or ""). rb may be NULL.
 * malloc'd (caller frees); NULL when out of memory. */
char *page_message_steps(const struct rb_runbook *rb, bool automation_on, const char *pending);

/* The per-person cap's summary: count pages held back for one person (cap a minute), with
 * the first subjects, one a line. 0 or -ENOMEM; free with page_message_free. */
int page_message_summary(uint32_t count, int64_t cap, const char *subjects,
                         struct page_message *ret);

/* 0, -EINVAL (a kind or state outside its enum) or -ENOMEM; free with page_message_free. */
int page_message_build(const struct page_message_in *in, struct page_message *ret);
void page_message_free(struct page_message *msg);

#endif
