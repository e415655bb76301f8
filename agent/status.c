/* The agent's status file: see status.h. */
#include "status.h"

#include "atomicfile.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int path_in(char *buf, size_t len, const char *dir, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int agent_status_write(const char *state_dir, const struct agent_status *st)
{
    char path[PATH_MAX], buf[AGENT_STATUS_MAX_BYTES];
    int r;

    if ((r = path_in(path, sizeof(path), state_dir, AGENT_STATUS_FILE)) < 0)
        return r;
    int n = snprintf(buf, sizeof(buf),
                     "version=1\npid=%ld\nnode=%s\nagent=%s\nwritten_ms=%" PRId64
                     "\ninterval_ms=%" PRId64 "\nstarted_ms=%" PRId64
                     "\nlink=%s\nconnected=%d\nlast_contact_ms=%" PRId64
                     "\nheartbeat_interval_ms=%" PRId64 "\nspool_depth=%" PRIu64
                     "\nspool_dropped_messages=%" PRIu64 "\nexecutor_ok=%d\n",
                     st->pid, st->node, st->agent_id, st->written_ms, st->interval_ms,
                     st->started_ms, st->link, st->connected ? 1 : 0, st->last_contact_ms,
                     st->heartbeat_interval_ms, st->spool_depth, st->spool_dropped_messages,
                     st->executor_ok ? 1 : 0);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return -EOVERFLOW;
    /* Rewritten every few seconds: not fsynced, a crash loses nothing a probe needs. */
    return vg_file_replace(path, buf, (size_t)n, 0600, false);
}

int agent_status_remove(const char *state_dir)
{
    char path[PATH_MAX];
    int r = path_in(path, sizeof(path), state_dir, AGENT_STATUS_FILE);
    if (r < 0)
        return r;
    return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

static bool parse_i64(const char *s, int64_t *ret)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0)
        return false;
    *ret = v;
    return true;
}

static bool parse_u64(const char *s, uint64_t *ret)
{
    int64_t v;
    if (!parse_i64(s, &v))
        return false;
    *ret = (uint64_t)v;
    return true;
}

static bool parse_bool(const char *s, bool *ret)
{
    if (strcmp(s, "0") != 0 && strcmp(s, "1") != 0)
        return false;
    *ret = s[0] == '1';
    return true;
}

static bool copy_text(char *dst, size_t len, const char *s)
{
    size_t n = strlen(s);
    if (n >= len)
        return false;
    memcpy(dst, s, n + 1);
    return true;
}

/* One "key=value" line into st; false if a known key has a bad value. */
static bool parse_line(char *line, struct agent_status *st, unsigned *seen)
{
    char *eq = strchr(line, '=');
    if (!eq)
        return false;
    *eq = '\0';
    const char *k = line, *v = eq + 1;
    int64_t i64;
    bool ok = true;

    if (strcmp(k, "version") == 0)
        ok = strcmp(v, "1") == 0;
    else if (strcmp(k, "pid") == 0)
        ok = parse_i64(v, &i64) && i64 <= LONG_MAX && ((st->pid = (long)i64), true);
    else if (strcmp(k, "node") == 0)
        ok = copy_text(st->node, sizeof(st->node), v);
    else if (strcmp(k, "agent") == 0)
        ok = copy_text(st->agent_id, sizeof(st->agent_id), v);
    else if (strcmp(k, "written_ms") == 0)
        ok = parse_i64(v, &st->written_ms) && (*seen |= 1u);
    else if (strcmp(k, "interval_ms") == 0)
        ok = parse_i64(v, &st->interval_ms) && st->interval_ms > 0 && (*seen |= 2u);
    else if (strcmp(k, "started_ms") == 0)
        ok = parse_i64(v, &st->started_ms);
    else if (strcmp(k, "link") == 0)
        ok = copy_text(st->link, sizeof(st->link), v);
    else if (strcmp(k, "connected") == 0)
        ok = parse_bool(v, &st->connected);
    else if (strcmp(k, "last_contact_ms") == 0)
        ok = parse_i64(v, &st->last_contact_ms);
    else if (strcmp(k, "heartbeat_interval_ms") == 0)
        ok = parse_i64(v, &st->heartbeat_interval_ms);
    else if (strcmp(k, "spool_depth") == 0)
        ok = parse_u64(v, &st->spool_depth);
    else if (strcmp(k, "spool_dropped_messages") == 0)
        ok = parse_u64(v, &st->spool_dropped_messages);
    else if (strcmp(k, "executor_ok") == 0)
        ok = parse_bool(v, &st->executor_ok) && (*seen |= 4u);
    return ok;
}

int agent_status_read(const char *state_dir, struct agent_status *ret, char *err, size_t errlen)
{
    char path[PATH_MAX], buf[AGENT_STATUS_MAX_BYTES + 1];
    int r = path_in(path, sizeof(path), state_dir, AGENT_STATUS_FILE);
    if (r < 0) {
        snprintf(err, errlen, "state_dir %s: path too long", state_dir);
        return r;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        r = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(-r));
        return r;
    }
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            close(fd);
            snprintf(err, errlen, "%s: %s", path, strerror(-r));
            return r;
        }
        if (n == 0 || len + (size_t)n == sizeof(buf) - 1) {
            len += (size_t)n;
            break;
        }
        len += (size_t)n;
    }
    close(fd);
    if (len >= AGENT_STATUS_MAX_BYTES || memchr(buf, '\0', len)) {
        snprintf(err, errlen, "%s: not a status file (too long or binary)", path);
        return -EINVAL;
    }
    buf[len] = '\0';

    struct agent_status st = {0};
    unsigned seen = 0;
    char *save = NULL;
    unsigned lineno = 0;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (!parse_line(line, &st, &seen)) {
            snprintf(err, errlen, "%s:%u: not a status line", path, lineno);
            return -EINVAL;
        }
    }
    if (seen != 7u) {
        snprintf(err, errlen, "%s: incomplete (written_ms, interval_ms or executor_ok missing)",
                 path);
        return -EINVAL;
    }
    *ret = st;
    return 0;
}

static double secs(int64_t ms)
{
    return (double)ms / 1000.0;
}

bool agent_status_check(const struct agent_status *st, int64_t now_ms, bool ready, char *why,
                        size_t whylen)
{
    int64_t age = now_ms - st->written_ms;
    int64_t stale_after = AGENT_STATUS_STALE_INTERVALS * st->interval_ms;
    char contact[64];

    if (age < 0)
        age = 0; /* the clock went back: the file is as fresh as can be told */
    if (st->last_contact_ms > 0)
        snprintf(contact, sizeof(contact), "%.0fs ago",
                 secs(now_ms > st->last_contact_ms ? now_ms - st->last_contact_ms : 0));
    else
        snprintf(contact, sizeof(contact), "never");

    if (age > stale_after) {
        snprintf(why, whylen,
                 "unhealthy: status written %.0fs ago (stale after %.0fs): the agent (pid %ld) "
                 "is stuck or no longer running",
                 secs(age), secs(stale_after), st->pid);
        return false;
    }
    if (!st->executor_ok) {
        snprintf(why, whylen,
                 "unhealthy: the executor does not answer (the agent exits for its supervisor "
                 "to restart it)");
        return false;
    }
    if (ready) {
        int64_t hb = st->heartbeat_interval_ms > 0 ? st->heartbeat_interval_ms : st->interval_ms;
        int64_t silent = st->last_contact_ms > 0 ? st->written_ms - st->last_contact_ms : -1;
        if (strcmp(st->link, "revoked") == 0) {
            snprintf(why, whylen, "not ready: the coordinator revoked this agent's key");
            return false;
        }
        if (silent < 0 || silent > AGENT_STATUS_STALE_INTERVALS * hb) {
            snprintf(why, whylen,
                     "not ready: no answer from the coordinator (last: %s; link %s, %s; spool "
                     "%" PRIu64 " messages)",
                     contact, st->link[0] ? st->link : "?",
                     st->connected ? "connected" : "not connected", st->spool_depth);
            return false;
        }
    }
    snprintf(why, whylen,
             "%s: node %s, link %s, coordinator last heard %s, spool %" PRIu64
             " messages, status %.0fs old",
             ready ? "ready" : "healthy", st->node[0] ? st->node : "?",
             st->link[0] ? st->link : "?", contact, st->spool_depth, secs(age));
    return true;
}
