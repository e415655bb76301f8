/*
 * Fuzz target: the CRI container log format (agent/collect/crilog.c) as the log collector
 * drives it on /var/log/pods files a container's process writes through its runtime: the byte
 * stream cut into bounded lines by logparse's splitter, each line parsed as a CRI record, and
 * partial records joined per stream under a small cap.
 *
 * Oracles beyond "no crash, no sanitizer report": a parsed record's message lies inside its
 * line and ends where the line ends; its stream is stdout or stderr; a joined message is never
 * longer than the joiner's cap, nor longer than all the message bytes fed so far.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crilog.h"
#include "logparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LINE_CAP 2048
#define JOIN_CAP 300 /* small, so fuzzed inputs reach the bound */

struct state {
    struct crilog_joiner joiner;
    size_t fed;      /* message bytes fed in all */
    size_t messages; /* delivered */
};

static void on_message(const char *msg, size_t len, bool truncated, void *userdata)
{
    struct state *st = userdata;
    (void)truncated;
    if (len > JOIN_CAP || len > st->fed || (len > 0 && msg == NULL))
        abort();
    st->messages++;
}

static void on_line(const char *line, size_t len, bool truncated, void *userdata)
{
    struct state *st = userdata;
    struct crilog_record rec;
    if (len > LINE_CAP)
        abort();
    if (crilog_parse(line, len, &rec) != 0)
        return;
    if (rec.msg < line || rec.msg > line + len || rec.msg + rec.msg_len != line + len)
        abort();
    if (rec.stream != CRILOG_STDOUT && rec.stream != CRILOG_STDERR)
        abort();
    st->fed += rec.msg_len;
    (void)crilog_joiner_add(&st->joiner, &rec, truncated, on_message, st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct state st = {.fed = 0};
    if (crilog_joiner_init(&st.joiner, JOIN_CAP) != 0)
        abort();
    logparse_lines_t *lines = logparse_lines_new(LINE_CAP);
    if (!lines)
        return 0;
    /* Fed in two pieces, split where the input says, as reads of a growing file are. */
    size_t cut = size ? data[0] % (size + 1) : 0;
    logparse_lines_feed(lines, data, cut, on_line, &st);
    logparse_lines_feed(lines, data + cut, size - cut, on_line, &st);
    logparse_lines_flush(lines, on_line, &st);
    crilog_joiner_flush(&st.joiner, on_message, &st);
    if (st.joiner.stream[0].active || st.joiner.stream[1].active)
        abort(); /* flush leaves nothing waiting */
    logparse_lines_destroy(&lines);
    crilog_joiner_free(&st.joiner);
    return 0;
}
