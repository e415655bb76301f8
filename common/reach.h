/*
 * Can another user reach a path? Daemons started as root hand directories to users they become
 * or start (the agent's network side, the private PostgreSQL cluster), and a directory above
 * them that the user cannot search (a clone under /root, a 0700 home) is the usual reason that
 * fails. These answer the question for real, in a forked child that switches to the user, and
 * name the directory that stops it, so the error can say what to change.
 *
 * Only root can switch users: called by anyone else, they answer for the caller.
 */
#ifndef VG_REACH_H
#define VG_REACH_H

#include <stddef.h>
#include <sys/types.h>

struct vg_identity {
    uid_t uid;
    gid_t gid;
    const gid_t *groups; /* supplementary groups, ngroups of them (0: none) */
    size_t ngroups;
};

/*
 * 1 if who may access path with mode (access(2)'s R_OK | W_OK | X_OK), 0 if not, a negative
 * errno if it could not be checked.
 */
int vg_reach_check(const struct vg_identity *who, const char *path, int mode);

/*
 * The first directory on path, from the top, that who cannot search, into out (len bytes):
 * 1 when there is one, 0 when who can search every one, a negative errno if it could not be
 * checked. One fork per directory: meant for explaining a failure, not for hot paths.
 */
int vg_reach_blocking_dir(const struct vg_identity *who, const char *path, char *out, size_t len);

#endif
