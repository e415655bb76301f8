#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum vg_log_level vg_log_threshold = VG_LOG_INFO;

static const char *log_prog = "vigil";
static bool log_timestamps;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void vg_log_init(const char *prog, enum vg_log_level level, bool timestamps)
{
    log_prog = prog;
    vg_log_threshold = level;
    log_timestamps = timestamps;
}

int vg_log_level_parse(const char *text, enum vg_log_level *ret_level)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(text, level_names[i]) == 0) {
            *ret_level = (enum vg_log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

void vg_log_write(enum vg_log_level level, const char *fmt, ...)
{
    /* One buffer, one write: lines from several threads do not interleave. */
    char line[2048];
    size_t used = 0;
    int n;

    if (log_timestamps) {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        used = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
        n = snprintf(line + used, sizeof(line) - used, ".%03ldZ ", ts.tv_nsec / 1000000);
        if (n > 0)
            used += (size_t)n;
    }
    n = snprintf(line + used, sizeof(line) - used, "%s %s: ", log_prog,
                 level_names[level <= VG_LOG_ERROR ? level : VG_LOG_ERROR]);
    if (n > 0 && (size_t)n < sizeof(line) - used)
        used += (size_t)n;

    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(line + used, sizeof(line) - used, fmt, ap);
    va_end(ap);
    if (n > 0)
        used += (size_t)n < sizeof(line) - used ? (size_t)n : sizeof(line) - used - 1;
    if (used >= sizeof(line) - 1)
        used = sizeof(line) - 2;
    line[used++] = '\n';
    fwrite(line, 1, used, stderr);
}

const char *vg_log_one_line(const char *msg, char *buf, size_t len)
{
    size_t n = 0;

    if (len == 0)
        return "";
    for (const char *p = msg ? msg : ""; *p && n + 1 < len; p++) {
        bool space = *p == '\n' || *p == '\r' || *p == '\t' || *p == ' ';
        if (!space)
            buf[n++] = *p;
        else if (n > 0 && buf[n - 1] != ' ')
            buf[n++] = ' ';
    }
    while (n > 0 && buf[n - 1] == ' ')
        n--;
    buf[n] = '\0';
    return buf;
}

void vg_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}
