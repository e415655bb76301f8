/* What the postgres and redis probe modules share: passwords from a private file or an
 * environment variable, and waiting on a server's socket within a deadline while watching the
 * runner's cancel fd. Compiled into each module that needs it, so modules stay
 * self-contained. */
#ifndef AGENT_PROBE_UTIL_H
#define AGENT_PROBE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define PROBE_PASSWORD_MAX 1024

/* The first line of file (which must be a regular file private to its owner), else the value
 * of the environment variable env; NULL in *ret when neither is configured (NULL or "").
 * The caller frees it with probe_password_free. 0 or a negative errno with err set. */
int probe_password(const char *file, const char *env, char **ret, char *err, size_t errlen);

/* A target's password source, validated once at open: password_file or password_env (not
 * both; "" = unset), copied into *ret_file / *ret_env (NULL when unset), and read once so a
 * missing or exposed file stops the agent at start-up (each connect reads it again, so a
 * rotated password is picked up). 0, or a negative errno with err set. */
struct probe_target_config;
int probe_password_setup(const struct probe_target_config *target, char **ret_file, char **ret_env,
                         char *err, size_t errlen);

/* Wipes and frees; NULL is fine. */
void probe_password_free(char *password);

enum wait_result { WAIT_READY = 0, WAIT_TIMEOUT = -1, WAIT_CANCELLED = -2, WAIT_ERROR = -3 };

/* Waits until fd has events, the monotonic deadline (ms, vg_mono_ms) passes, or cancel_fd
 * (-1 = none) becomes readable. WAIT_ERROR for fd < 0 or a failed poll (errno set). */
enum wait_result probe_wait_fd(int fd, short events, int cancel_fd, int64_t deadline);

#endif
