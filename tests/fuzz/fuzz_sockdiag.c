/*
 * Fuzz target: the NETLINK_SOCK_DIAG replies the netstat collector reads instead of /proc/net
 * (agent/collect/sockdiag.c): one received batch of netlink messages, walked as a dump walks it
 * (headers, lengths, alignment, the request's seq, NLMSG_DONE and NLMSG_ERROR) and each record
 * read as an inet_diag_msg (TCP, UDP) and as a unix_diag_msg, through sockdiag_parse, the
 * socket-free entry point of the same code.
 *
 * The seed corpus holds real dumps of this machine's sockets (TCP, UDP, unix; request seq 1).
 *
 * Oracles beyond "no crash, no sanitizer report": addresses come out as AF_INET or AF_INET6 and
 * format; an IPv4-mapped IPv6 address is reported as IPv4; a listener's send queue is 0; unix
 * states are the SS_* numbers of /proc/net/unix.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sockdiag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SEQ 1
#define MAX_BATCH (64 * 1024)

static int on_sock(const struct procfs_sock *s, void *userdata)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    char text[64];
    (void)userdata;
    for (int i = 0; i < 2; i++) {
        const struct procfs_addr *a = i ? &s->remote : &s->local;
        if (a->family != AF_INET && a->family != AF_INET6)
            abort();
        if (a->family == AF_INET6 && memcmp(a->addr, v4mapped, sizeof(v4mapped)) == 0)
            abort();
        if (procfs_addr_format(a, text, sizeof(text)) < 0)
            abort();
    }
    if (s->state == PROCFS_TCP_LISTEN && s->tx_queue != 0)
        abort();
    return 0;
}

static int on_unix(const struct procfs_unix_sock *s, void *userdata)
{
    (void)userdata;
    if (s->state < 1 || s->state > 3 || s->path[0] != '\0' || s->listening != (s->flags != 0))
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* As recv() leaves it: in an aligned buffer. */
    static uint32_t buf[MAX_BATCH / 4];
    bool done = false;

    if (size > MAX_BATCH)
        return 0;
    memcpy(buf, data, size);
    (void)sockdiag_parse(buf, size, SEQ, on_sock, NULL, NULL, &done);
    (void)sockdiag_parse(buf, size, SEQ, NULL, on_unix, NULL, &done);
    if (sockdiag_parse(buf, size, SEQ, on_sock, on_unix, NULL, &done) != -EINVAL)
        abort();
    return 0;
}
