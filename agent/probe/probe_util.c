/* What the probe modules share (see probe_util.h). */
#include "probe_util.h"

#include "probe.h"

#include "timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int read_password_file(const char *path, char **ret, char *err, size_t errlen)
{
    struct stat st;
    char buf[PROBE_PASSWORD_MAX + 2];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int r = -errno;
        snprintf(err, errlen, "password file %s: %s", path, strerror(-r));
        return r;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
        snprintf(err, errlen,
                 "password file %s must be a regular file private to its owner; chmod 600 it",
                 path);
        close(fd);
        return -EPERM;
    }
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    int saved = errno;
    close(fd);
    if (n < 0) {
        snprintf(err, errlen, "password file %s: %s", path, strerror(saved));
        return -saved;
    }
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    size_t len = strlen(buf);
    if (len == 0 || len > PROBE_PASSWORD_MAX) {
        snprintf(err, errlen, "password file %s: the first line must hold 1 to %d characters", path,
                 PROBE_PASSWORD_MAX);
        explicit_bzero(buf, sizeof(buf));
        return -EINVAL;
    }
    *ret = strdup(buf);
    explicit_bzero(buf, sizeof(buf));
    return *ret ? 0 : -ENOMEM;
}

int probe_password(const char *file, const char *env, char **ret, char *err, size_t errlen)
{
    *ret = NULL;
    if (file && file[0])
        return read_password_file(file, ret, err, errlen);
    if (env && env[0]) {
        const char *value = getenv(env);
        if (!value || !value[0] || strlen(value) > PROBE_PASSWORD_MAX) {
            snprintf(err, errlen, "environment variable %s must hold the password", env);
            return -ENOENT;
        }
        *ret = strdup(value);
        return *ret ? 0 : -ENOMEM;
    }
    return 0;
}

void probe_password_free(char *password)
{
    if (password) {
        explicit_bzero(password, strlen(password));
        free(password);
    }
}

enum wait_result probe_wait_fd(int fd, short events, int cancel_fd, int64_t deadline)
{
    if (fd < 0)
        return WAIT_ERROR;
    for (;;) {
        int64_t remaining = deadline - vg_mono_ms();
        if (remaining <= 0)
            return WAIT_TIMEOUT;
        struct pollfd fds[2] = {{.fd = fd, .events = events}, {.fd = cancel_fd, .events = POLLIN}};
        int n = poll(fds, cancel_fd >= 0 ? 2 : 1, (int)remaining);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return WAIT_ERROR;
        if (cancel_fd >= 0 && fds[1].revents)
            return WAIT_CANCELLED;
        if (fds[0].revents)
            return WAIT_READY;
    }
}

int probe_password_setup(const struct probe_target_config *target, char **ret_file, char **ret_env,
                         char *err, size_t errlen)
{
    bool file = target->password_file && target->password_file[0];
    bool env = target->password_env && target->password_env[0];
    char *password = NULL;

    *ret_file = *ret_env = NULL;
    if (file && env) {
        snprintf(err, errlen, "set either password_file or password_env, not both");
        return -EINVAL;
    }
    if ((file && !(*ret_file = strdup(target->password_file))) ||
        (env && !(*ret_env = strdup(target->password_env)))) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int r = probe_password(*ret_file, *ret_env, &password, err, errlen);
    probe_password_free(password);
    return r;
}
