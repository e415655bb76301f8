/*
 * vigil-agent-action: runs one service action (postgres, redis, kubernetes) as the agent's
 * user, from the request the executor writes on its stdin. The contract is in svc.h.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "svc.h"

#define PROG "vigil-agent-action"

static void usage(FILE *to)
{
    fprintf(to,
            "usage: " PROG " KIND OP < REQUEST\n"
            "\n"
            "Runs one service action of the node's action catalog (KIND postgres, redis or\n"
            "kubernetes). vigil-agent-exec starts it, as the agent's user, after it checked\n"
            "the command; the request (\"key\\0value\\0\" pairs, see agent/action/svc.h) comes\n"
            "on stdin. Exit status: 0 done, 1 the service refused or failed, 2 a bad\n"
            "request, 3 the service could not be reached.\n");
}

/* Reads all of fd into buf (at most max bytes); -EFBIG when there is more. */
static ssize_t read_all(int fd, char *buf, size_t max)
{
    size_t used = 0;
    for (;;) {
        char extra = 0;
        bool full = used == max; /* one byte more, into extra, tells whether it was all */
        ssize_t n = read(fd, full ? &extra : buf + used, full ? 1 : max - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return (ssize_t)used;
        if (full)
            return -EFBIG;
        used += (size_t)n;
    }
}

int main(int argc, char **argv)
{
    static char buf[SVC_REQUEST_MAX];
    struct svc_kv items[SVC_REQUEST_KEYS_MAX];
    struct svc_request req = {items, 0};
    char err[1024] = "";

    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc != 3) {
        usage(stderr);
        return SVC_EXIT_BAD_REQUEST;
    }
    /* The request may hold the cluster's token and a database password: the agent's network
     * side runs as the same user and must not read them from this process (ptrace, /proc/PID/
     * mem, a core). */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
        fprintf(stderr, PROG ": cannot make the process undumpable: %s\n", strerror(errno));
        return SVC_EXIT_BAD_REQUEST;
    }
    ssize_t len = read_all(STDIN_FILENO, buf, sizeof(buf));
    if (len < 0) {
        fprintf(stderr, PROG ": cannot read the request: %s\n",
                len == -EFBIG ? "longer than 64 KiB" : strerror((int)-len));
        return SVC_EXIT_BAD_REQUEST;
    }
    if (svc_request_parse(buf, (size_t)len, items, SVC_REQUEST_KEYS_MAX, &req.n) < 0) {
        fprintf(stderr, PROG ": malformed request on stdin\n");
        return SVC_EXIT_BAD_REQUEST;
    }
    const char *kind = svc_get(&req, "kind");
    const char *op = svc_get(&req, "op");
    if (!kind || !op || strcmp(kind, argv[1]) != 0 || strcmp(op, argv[2]) != 0) {
        fprintf(stderr, PROG ": the request is for %s %s, not %s %s\n", kind ? kind : "(no kind)",
                op ? op : "(no op)", argv[1], argv[2]);
        return SVC_EXIT_BAD_REQUEST;
    }

    int r;
    if (strcmp(kind, "postgres") == 0)
        r = svc_postgres_run(&req, stdout, err, sizeof(err));
    else if (strcmp(kind, "redis") == 0)
        r = svc_redis_run(&req, stdout, err, sizeof(err));
    else if (strcmp(kind, "kubernetes") == 0)
        r = svc_kube_run(&req, stdout, err, sizeof(err));
    else {
        snprintf(err, sizeof(err), "unknown kind %s", kind);
        r = SVC_EXIT_BAD_REQUEST;
    }
    fflush(stdout);
    if (r != SVC_EXIT_OK)
        fprintf(stderr, PROG ": %s %s (%s): %s\n", kind, op, svc_get_or(&req, "action", "?"),
                err[0] ? err : "failed");
    return r;
}
