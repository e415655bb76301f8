/* One logger for every Vigil program: level-filtered, key=value structured lines on stderr. */
#ifndef VG_LOG_H
#define VG_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum vg_log_level {
    VG_LOG_DEBUG = 0,
    VG_LOG_INFO = 1,
    VG_LOG_WARN = 2,
    VG_LOG_ERROR = 3,
};

/* Messages below this level are discarded before their arguments are formatted. */
extern enum vg_log_level vg_log_threshold;

/* prog names the program in every line; timestamps adds an RFC 3339 UTC time prefix. */
void vg_log_init(const char *prog, enum vg_log_level level, bool timestamps);

/* Parses "debug", "info", "warn", "error". Returns 0 or -EINVAL. */
int vg_log_level_parse(const char *text, enum vg_log_level *ret_level);

/* Folds a multi-line message (libpq's end in a newline and may span lines) into one log line:
 * whitespace runs become one space, trimmed. Returns buf. */
const char *vg_log_one_line(const char *msg, char *buf, size_t len);

/* Formats an error message for a caller's (err, errlen) buffer; NULL or 0 is ignored. The one
 * helper every "return -errno with err set" function shares. */
void vg_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void vg_log_write(enum vg_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define vg_log(level, ...)                                                                         \
    do {                                                                                           \
        if ((level) >= vg_log_threshold)                                                           \
            vg_log_write((level), __VA_ARGS__);                                                    \
    } while (0)

#endif
