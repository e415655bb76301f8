/*
 * NETLINK_SOCK_DIAG dumps: the contract is in sockdiag.h.
 *
 * One request, then as many recv()s as the kernel needs to hand over the dump (each up to
 * 32 KiB of records, generated while we read), until NLMSG_DONE. TCP uses the old
 * TCPDIAG_GETSOCK request because the kernel answers it for both families in one walk of its
 * hash tables; SOCK_DIAG_BY_FAMILY needs one walk per family and is the fallback.
 */
#include "sockdiag.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>

/* netlink_recvmsg caps a dump's batch at SKB_WITH_OVERHEAD(32768): a buffer this size never
 * truncates a message. */
#define RECV_BUF (32 * 1024)
#define DUMP_TIMEOUT_S 2 /* a dump is generated as we read it: only a kernel bug waits */

/* /proc/net/unix's numbers: the socket layer's SS_* states and __SO_ACCEPTCON. */
enum { SS_UNCONNECTED_ = 1, SS_CONNECTING_ = 2, SS_CONNECTED_ = 3 };
#define SO_ACCEPTCON_FLAG (1u << 16)

struct sockdiag {
    int fd;       /* -1 between a failed or abandoned dump and the next request */
    uint32_t seq; /* of the current request: replies to an abandoned one are skipped */
    bool tcp_compat_refused;
    char *buf; /* RECV_BUF */
};

/* Handles one record's payload: 0 done, 1 malformed (skipped), < 0 stop with that error. */
typedef int (*record_fn)(const void *data, size_t len, void *ctx);

static int ensure_open(sockdiag_t *self)
{
    if (self->fd >= 0)
        return 0;
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0)
        return -errno;
    struct timeval timeout = {.tv_sec = DUMP_TIMEOUT_S};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)) < 0) {
        int r = -errno;
        close(fd);
        return r;
    }
    self->fd = fd;
    return 0;
}

sockdiag_t *sockdiag_new(void)
{
    sockdiag_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->fd = -1;
    self->buf = malloc(RECV_BUF);
    if (!self->buf) {
        free(self);
        errno = ENOMEM;
        return NULL;
    }
    /* Opened now so that a refusal is known before the first cycle. */
    int r = ensure_open(self);
    if (r < 0) {
        sockdiag_destroy(&self);
        errno = -r;
        return NULL;
    }
    return self;
}

void sockdiag_destroy(sockdiag_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sockdiag_t *self = *self_p;
    if (self->fd >= 0)
        close(self->fd);
    free(self->buf);
    free(self);
    *self_p = NULL;
}

static void close_socket(sockdiag_t *self)
{
    if (self->fd >= 0)
        close(self->fd);
    self->fd = -1; /* the rest of an abandoned dump goes with it */
}

/* The error a dump ended with: NLMSG_ERROR's, or one the kernel put in NLMSG_DONE. */
static int reply_error(const struct nlmsghdr *h)
{
    if (h->nlmsg_type == NLMSG_ERROR) {
        struct nlmsgerr e;
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(e)))
            return -EPROTO;
        memcpy(&e, NLMSG_DATA(h), sizeof(e));
        return e.error < 0 ? e.error : -EPROTO; /* an ACK is no answer to a dump */
    }
    int done = 0;
    if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(done)))
        memcpy(&done, NLMSG_DATA(h), sizeof(done));
    return done < 0 ? done : 0;
}

/* One received batch of a dump's replies: each record of request seq goes to fn, and *skipped
 * counts the malformed ones. 1 when the batch ended the dump, 0 when more batches follow, or a
 * negative errno: the dump's error, or fn's. */
static int parse_batch(const void *buf, size_t len, uint32_t seq, record_fn fn, void *ctx,
                       int *skipped)
{
    /* NLMSG_OK and NLMSG_NEXT, with the lengths compared as unsigned: a message's length is at
     * least its header and at most what is left; the next one starts at the aligned length. */
    for (size_t off = 0; len - off >= NLMSG_HDRLEN;) {
        const struct nlmsghdr *h = (const struct nlmsghdr *)((const char *)buf + off);
        if (h->nlmsg_len < NLMSG_HDRLEN || h->nlmsg_len > len - off)
            break;
        if (h->nlmsg_seq == seq) { /* else the tail of a request we gave up on */
            if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
                int r = reply_error(h);
                return r < 0 ? r : 1;
            }
            int r = fn(NLMSG_DATA(h), h->nlmsg_len - NLMSG_HDRLEN, ctx);
            if (r < 0)
                return r;
            *skipped += r;
        }
        size_t step = NLMSG_ALIGN((size_t)h->nlmsg_len);
        if (step >= len - off)
            break;
        off += step;
    }
    return 0;
}

/* Sends req (a dump request; seq and flags are filled in) and feeds each record to fn. */
static int dump(sockdiag_t *self, struct nlmsghdr *req, record_fn fn, void *ctx)
{
    int r = ensure_open(self);
    if (r < 0)
        return r;
    req->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req->nlmsg_seq = ++self->seq;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    ssize_t n;
    do {
        n = sendto(self->fd, req, req->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel));
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        r = -errno;
        goto err_close;
    }

    int skipped = 0;
    for (;;) {
        struct sockaddr_nl from;
        struct iovec iov = {.iov_base = self->buf, .iov_len = RECV_BUF};
        struct msghdr msg = {
            .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1};
        n = recvmsg(self->fd, &msg, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            r = (errno == EAGAIN || errno == EWOULDBLOCK) ? -ETIMEDOUT : -errno;
            goto err_close;
        }
        if (n == 0 || (msg.msg_flags & MSG_TRUNC)) {
            r = n == 0 ? -EPROTO : -EMSGSIZE;
            goto err_close;
        }
        if (from.nl_pid != 0)
            continue; /* only the kernel answers */
        r = parse_batch(self->buf, (size_t)n, self->seq, fn, ctx, &skipped);
        if (r < 0)
            goto err_close;
        if (r == 1)
            return skipped;
    }

err_close:
    close_socket(self);
    return r;
}

/* ---- inet: TCP and UDP ------------------------------------------------------------------ */

struct inet_ctx {
    procfs_sock_cb cb;
    void *userdata;
    size_t delivered; /* records passed to cb */
};

static void endpoint(int family, const __be32 *addr, __be16 port, struct procfs_addr *ret)
{
    static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memset(ret, 0, sizeof(*ret));
    ret->family = family;
    ret->port = ntohs(port);
    memcpy(ret->addr, addr, family == AF_INET ? 4 : 16);
    /* As procfs_parse_net_tcp reports it: a dual-stack socket's IPv4 peer is IPv4. */
    if (family == AF_INET6 && memcmp(ret->addr, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
        ret->family = AF_INET;
        memmove(ret->addr, ret->addr + 12, 4);
        memset(ret->addr + 4, 0, 12);
    }
}

static int inet_record(const void *data, size_t len, void *vctx)
{
    struct inet_ctx *ctx = vctx;
    struct inet_diag_msg m;
    if (len < sizeof(m))
        return 1;
    memcpy(&m, data, sizeof(m)); /* netlink only promises 4-byte alignment */
    if (m.idiag_family != AF_INET && m.idiag_family != AF_INET6)
        return 1;
    struct procfs_sock s = {
        .state = m.idiag_state,
        .rx_queue = m.idiag_rqueue,
        /* A listener's wqueue is its backlog limit; /proc/net/tcp shows 0 there. */
        .tx_queue = m.idiag_state == PROCFS_TCP_LISTEN ? 0 : m.idiag_wqueue,
        .uid = (uid_t)m.idiag_uid,
        .inode = m.idiag_inode,
    };
    endpoint(m.idiag_family, m.id.idiag_src, m.id.idiag_sport, &s.local);
    endpoint(m.idiag_family, m.id.idiag_dst, m.id.idiag_dport, &s.remote);
    ctx->delivered++;
    int r = ctx->cb(&s, ctx->userdata);
    return r < 0 ? r : 0;
}

/* The kernel has no handler for this request (module missing, interface gone). */
static bool is_refusal(int r)
{
    return r == -EOPNOTSUPP || r == -EINVAL || r == -ENOENT || r == -EPROTONOSUPPORT ||
           r == -EAFNOSUPPORT;
}

static int dump_inet_v2(sockdiag_t *self, int family, int protocol, uint32_t states,
                        struct inet_ctx *ctx)
{
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 r;
    } req = {
        .nlh = {.nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY},
        .r = {.sdiag_family = (uint8_t)family,
              .sdiag_protocol = (uint8_t)protocol,
              .idiag_states = states},
    };
    return dump(self, &req.nlh, inet_record, ctx);
}

static int dump_tcp(sockdiag_t *self, uint32_t states, procfs_sock_cb cb, void *userdata)
{
    if (!self || !cb)
        return -EINVAL;
    struct inet_ctx ctx = {cb, userdata, 0};
    if (!self->tcp_compat_refused) {
        /* inet_diag_dump_compat asks for family AF_UNSPEC: IPv4 and IPv6 in one walk. */
        struct {
            struct nlmsghdr nlh;
            struct inet_diag_req r;
        } req = {
            .nlh = {.nlmsg_len = sizeof(req), .nlmsg_type = TCPDIAG_GETSOCK},
            .r = {.idiag_family = AF_INET, .idiag_states = states},
        };
        int r = dump(self, &req.nlh, inet_record, &ctx);
        if (!is_refusal(r) || ctx.delivered > 0)
            return r;
        self->tcp_compat_refused = true;
    }
    int r4 = dump_inet_v2(self, AF_INET, IPPROTO_TCP, states, &ctx);
    if (r4 < 0)
        return r4;
    int r6 = dump_inet_v2(self, AF_INET6, IPPROTO_TCP, states, &ctx);
    if (r6 == -ENOENT || r6 == -EAFNOSUPPORT)
        r6 = 0; /* no IPv6 */
    return r6 < 0 ? r6 : r4 + r6;
}

int sockdiag_tcp(sockdiag_t *self, procfs_sock_cb cb, void *userdata)
{
    return dump_tcp(self, ~0u, cb, userdata);
}

int sockdiag_tcp_listeners(sockdiag_t *self, procfs_sock_cb cb, void *userdata)
{
    /* LISTEN only: the kernel then walks its small listening hash, not the established one. */
    return dump_tcp(self, 1u << PROCFS_TCP_LISTEN, cb, userdata);
}

int sockdiag_udp(sockdiag_t *self, int family, procfs_sock_cb cb, void *userdata)
{
    if (!self || !cb || (family != AF_INET && family != AF_INET6))
        return -EINVAL;
    struct inet_ctx ctx = {cb, userdata, 0};
    return dump_inet_v2(self, family, IPPROTO_UDP, ~0u, &ctx);
}

/* ---- unix ------------------------------------------------------------------------------- */

struct unix_ctx {
    procfs_unix_cb cb;
    void *userdata;
};

static int unix_record(const void *data, size_t len, void *vctx)
{
    struct unix_ctx *ctx = vctx;
    struct unix_diag_msg m;
    if (len < sizeof(m))
        return 1;
    memcpy(&m, data, sizeof(m));
    if (m.udiag_family != AF_UNIX)
        return 1;
    /* unix_diag reports sk_state in TCP numbers; /proc/net/unix the socket's SS_* state. */
    struct procfs_unix_sock s = {.inode = m.udiag_ino, .type = m.udiag_type};
    switch (m.udiag_state) {
    case PROCFS_TCP_LISTEN:
        s.listening = true;
        s.flags = SO_ACCEPTCON_FLAG;
        s.state = SS_UNCONNECTED_;
        break;
    case PROCFS_TCP_ESTABLISHED:
        s.state = SS_CONNECTED_;
        break;
    case PROCFS_TCP_SYN_SENT:
        s.state = SS_CONNECTING_;
        break;
    default:
        s.state = SS_UNCONNECTED_;
        break;
    }
    int r = ctx->cb(&s, ctx->userdata);
    return r < 0 ? r : 0;
}

int sockdiag_unix(sockdiag_t *self, procfs_unix_cb cb, void *userdata)
{
    if (!self || !cb)
        return -EINVAL;
    struct unix_ctx ctx = {cb, userdata};
    struct {
        struct nlmsghdr nlh;
        struct unix_diag_req r;
    } req = {
        .nlh = {.nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY},
        .r = {.sdiag_family = AF_UNIX, .udiag_states = ~0u},
    };
    return dump(self, &req.nlh, unix_record, &ctx);
}

/* ---- parsing without a socket ------------------------------------------------------------ */

int sockdiag_parse(const void *buf, size_t len, uint32_t seq, procfs_sock_cb cb,
                   procfs_unix_cb unix_cb, void *userdata, bool *ret_done)
{
    if (!buf || (!cb) == (!unix_cb) || !ret_done)
        return -EINVAL;
    struct inet_ctx inet = {cb, userdata, 0};
    struct unix_ctx unx = {unix_cb, userdata};
    int skipped = 0;
    int r = cb ? parse_batch(buf, len, seq, inet_record, &inet, &skipped)
               : parse_batch(buf, len, seq, unix_record, &unx, &skipped);
    if (r < 0)
        return r;
    *ret_done = r == 1;
    return skipped;
}
