/* Probe modules' passwords: read from a private file or an environment variable. Compiled into
 * each module that needs it (postgres, redis), so modules stay self-contained. */
#ifndef AGENT_PROBE_SECRET_H
#define AGENT_PROBE_SECRET_H

#include <stddef.h>

#define PROBE_PASSWORD_MAX 1024

/* The first line of file (which must be a regular file private to its owner), else the value
 * of the environment variable env; NULL in *ret when neither is configured (NULL or "").
 * The caller frees it with probe_password_free. 0 or a negative errno with err set. */
int probe_password(const char *file, const char *env, char **ret, char *err, size_t errlen);

/* Wipes and frees; NULL is fine. */
void probe_password_free(char *password);

#endif
