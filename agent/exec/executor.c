/*
 * vigil-agent-exec: the privileged executor. Started only by vigil-agent (agent/privsep.c),
 * before the agent drops its privileges, with its end of a SOCK_SEQPACKET socketpair as fd 3.
 *
 * It links nothing but libc and allocates nothing: it must stay small and easy to audit.
 * Every message is size-checked; anything unexpected ends the process (exit 3), since a
 * confused agent is treated as a compromised one.
 *
 * Exit status: 0 the agent closed the channel, 1 an I/O error, 2 not started by vigil-agent,
 * 3 protocol violation.
 */
#include "privsep.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROG "vigil-agent-exec"

enum exit_status {
    EXIT_CLOSED = 0,
    EXIT_IO = 1,
    EXIT_NOT_STARTED_BY_AGENT = 2,
    EXIT_PROTOCOL = 3,
};

static void die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

/* One line on stderr, one write (the agent's stderr is shared with ours). */
static void die(int status, const char *fmt, ...)
{
    static const char prefix[] = PROG ": ";
    char line[256];
    int used = (int)sizeof(prefix) - 1;
    memcpy(line, prefix, sizeof(prefix) - 1);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + used, sizeof(line) - (size_t)used, fmt, ap);
    va_end(ap);
    if (n > 0)
        used += n < (int)sizeof(line) - used ? n : (int)sizeof(line) - used - 1;
    if (used > (int)sizeof(line) - 2)
        used = (int)sizeof(line) - 2;
    line[used++] = '\n';
    if (write(STDERR_FILENO, line, (size_t)used) < 0) {
        /* stderr is gone: the exit status still tells */
    }
    _exit(status);
}

/* fd 3 must be a unix SOCK_SEQPACKET socket whose other end belongs to our parent. */
static void check_channel(void)
{
    int type = 0;
    int domain = 0;
    socklen_t len = sizeof(type);
    if (getsockopt(PRIVSEP_EXEC_FD, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET)
        die(EXIT_NOT_STARTED_BY_AGENT, "must be started by vigil-agent (fd %d is not its socket)",
            PRIVSEP_EXEC_FD);
    len = sizeof(domain);
    if (getsockopt(PRIVSEP_EXEC_FD, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_UNIX)
        die(EXIT_NOT_STARTED_BY_AGENT, "must be started by vigil-agent (fd %d is not its socket)",
            PRIVSEP_EXEC_FD);

    /* Die with the agent. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
        die(EXIT_IO, "prctl(PR_SET_PDEATHSIG): %s", strerror(errno));

    /*
     * The agent may have died before the prctl: then we were re-parented. Compare with the
     * process that created the socketpair rather than with 1, which is also the agent's pid
     * when it is a container's entrypoint.
     */
    struct ucred peer;
    len = sizeof(peer);
    if (getsockopt(PRIVSEP_EXEC_FD, SOL_SOCKET, SO_PEERCRED, &peer, &len) < 0)
        die(EXIT_IO, "getsockopt(SO_PEERCRED): %s", strerror(errno));
    if (getppid() != peer.pid)
        die(EXIT_CLOSED, "vigil-agent (pid %d) exited before the executor started", (int)peer.pid);
}

/* recv returned 0: the agent closed its end, or sent an empty message (SEQPACKET allows it). */
static bool peer_closed(void)
{
    struct pollfd pfd = {.fd = PRIVSEP_EXEC_FD, .events = POLLIN | POLLRDHUP};
    return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLRDHUP));
}

int main(void)
{
    check_channel();

    for (;;) {
        unsigned char buf[sizeof(struct privsep_msg) + 1]; /* +1: longer messages show */
        ssize_t n = recv(PRIVSEP_EXEC_FD, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 && !peer_closed())
            die(EXIT_PROTOCOL, "protocol violation: empty message");
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return EXIT_CLOSED;
        if (n < 0)
            die(EXIT_IO, "recv: %s", strerror(errno));
        if ((size_t)n != sizeof(struct privsep_msg))
            die(EXIT_PROTOCOL, "protocol violation: message of %zd bytes (expected %zu)", n,
                sizeof(struct privsep_msg));

        struct privsep_msg msg;
        memcpy(&msg, buf, sizeof(msg));
        if (msg.magic != PRIVSEP_MAGIC)
            die(EXIT_PROTOCOL, "protocol violation: bad magic %#x", (unsigned)msg.magic);

        switch (msg.type) {
        case PRIVSEP_PING: {
            struct privsep_msg pong = {
                .magic = PRIVSEP_MAGIC, .type = PRIVSEP_PONG, .nonce = msg.nonce};
            ssize_t sent;
            do {
                sent = send(PRIVSEP_EXEC_FD, &pong, sizeof(pong), MSG_NOSIGNAL);
            } while (sent < 0 && errno == EINTR);
            if (sent < 0 && (errno == EPIPE || errno == ECONNRESET))
                return EXIT_CLOSED;
            if (sent != (ssize_t)sizeof(pong))
                die(EXIT_IO, "send: %s", sent < 0 ? strerror(errno) : "short write");
            break;
        }
        default:
            die(EXIT_PROTOCOL, "protocol violation: unexpected message type %u",
                (unsigned)msg.type);
        }
    }
}
