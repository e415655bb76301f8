/* Can another user reach a path: see reach.h. */
#include "reach.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

/* In the forked child: async-signal-safe calls only. */
static int become(const struct vg_identity *who)
{
    if (geteuid() != 0)
        return 0;
    if (setgroups(who->ngroups, who->groups) < 0 || setgid(who->gid) < 0 || setuid(who->uid) < 0)
        return -1;
    return 0;
}

int vg_reach_check(const struct vg_identity *who, const char *path, int mode)
{
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        if (become(who) < 0)
            _exit(2);
        _exit(access(path, mode) == 0 ? 0 : 1);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) > 1)
        return -EPERM;
    return WEXITSTATUS(status) == 0;
}

int vg_reach_blocking_dir(const struct vg_identity *who, const char *path, char *out, size_t len)
{
    char prefix[PATH_MAX];
    if (path[0] != '/')
        return -EINVAL;
    if (snprintf(prefix, sizeof(prefix), "%s", path) >= (int)sizeof(prefix))
        return -ENAMETOOLONG;
    for (char *p = prefix + 1;; p++) {
        bool end = *p == '\0';
        if (*p != '/' && !end)
            continue;
        char saved = *p;
        *p = '\0';
        int r = vg_reach_check(who, prefix, X_OK);
        if (r < 0)
            return r;
        if (r == 0) {
            snprintf(out, len, "%s", prefix);
            return 1;
        }
        if (end)
            return 0;
        *p = saved;
    }
}
