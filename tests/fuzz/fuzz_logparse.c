/*
 * Fuzz target: the log collector's parsing (agent/collect/logparse.c) as logtail.c drives it on
 * files any local process can write to: the byte stream cut into bounded lines, and each line
 * read as an access-log line, a /dev/kmsg record (with the OOM-kill message inside), an
 * sshd/PAM authentication failure, matched against named patterns, and counted per source
 * address in a sliding window.
 *
 * Oracles beyond "no crash, no sanitizer report": lines are never longer than the splitter's
 * cap; parsed fields are terminated inside their arrays and within their documented ranges
 * (status 100..599, kmsg level 0..7, a borrowed message inside its record); the window never
 * holds more keys than its bound, and a key's count is never more than the total.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "logparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LINE_CAP 1024
#define WINDOW_KEYS 8

struct state {
    logparse_patterns_t *patterns;
    logparse_window_t *window;
    int64_t now_s;
    size_t matches;
};

static void check_text(const char *field, size_t cap)
{
    if (memchr(field, '\0', cap) == NULL)
        abort();
}

static void on_match(const char *name, void *userdata)
{
    struct state *st = userdata;
    if (name == NULL || name[0] == '\0')
        abort();
    st->matches++;
}

static void on_line(const char *line, size_t len, bool truncated, void *userdata)
{
    struct state *st = userdata;
    (void)truncated;
    if (len > LINE_CAP)
        abort();

    struct logparse_access a;
    if (logparse_access(line, len, &a) == 0) {
        check_text(a.addr, sizeof(a.addr));
        check_text(a.method, sizeof(a.method));
        check_text(a.path, sizeof(a.path));
        if (logparse_status_class(a.status) < 1 || logparse_status_class(a.status) > 5)
            abort();
        if (logparse_window_add(st->window, a.addr, st->now_s) < 0)
            abort();
    }

    struct logparse_kmsg k;
    if (logparse_kmsg_record(line, len, &k) == 0) {
        if (k.level < 0 || k.level > 7 || k.msg < line || k.msg + k.msg_len > line + len)
            abort();
        struct logparse_oom oom;
        if (logparse_oom_kill(k.msg, k.msg_len, &oom))
            check_text(oom.comm, sizeof(oom.comm));
    }
    struct logparse_oom oom;
    if (logparse_oom_kill(line, len, &oom))
        check_text(oom.comm, sizeof(oom.comm));

    char addr[LOGPARSE_ADDR_MAX], user[64];
    enum logparse_login_kind kind;
    if (logparse_failed_login_kind(line, len, addr, sizeof(addr), user, sizeof(user), &kind)) {
        check_text(addr, sizeof(addr));
        check_text(user, sizeof(user));
        if (logparse_window_add(st->window, addr, st->now_s) < 0)
            abort();
    }
    /* A buffer too small for any address or user. */
    (void)logparse_failed_login(line, len, addr, 2, user, 1);

    if (logparse_patterns_match(st->patterns, line, len, on_match, st) < 0)
        abort();
    st->now_s++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct state st = {0};
    st.now_s = 1700000000;
    st.patterns = logparse_patterns_new();
    st.window = logparse_window_new(60, WINDOW_KEYS);
    logparse_lines_t *lines = logparse_lines_new(LINE_CAP);
    if (!st.patterns || !st.window || !lines)
        abort();
    if (logparse_patterns_add(st.patterns, "panic", "kernel panic|Oops", NULL, 0) != 0 ||
        logparse_patterns_add(st.patterns, "segfault", "segfault at [0-9a-f]+ ip", NULL, 0) != 0 ||
        logparse_patterns_add(st.patterns, "oom", "^.*(Out of memory|oom-kill):", NULL, 0) != 0)
        abort();

    /* The stream in two pieces, as a tailed file arrives. */
    size_t half = size / 2;
    logparse_lines_feed(lines, data, half, on_line, &st);
    logparse_lines_feed(lines, data + half, size - half, on_line, &st);
    logparse_lines_flush(lines, on_line, &st);

    uint64_t total = logparse_window_total(st.window, st.now_s);
    if (logparse_window_keys(st.window) > WINDOW_KEYS)
        abort();
    struct logparse_window_entry top[WINDOW_KEYS];
    size_t n = logparse_window_top(st.window, st.now_s, top, WINDOW_KEYS);
    for (size_t i = 0; i < n; i++) {
        check_text(top[i].key, sizeof(top[i].key));
        if (top[i].count > total ||
            logparse_window_count(st.window, top[i].key, st.now_s) != top[i].count)
            abort();
    }

    logparse_lines_destroy(&lines);
    logparse_window_destroy(&st.window);
    logparse_patterns_destroy(&st.patterns);
    return 0;
}
