/*
 * The kernel's socket tables through NETLINK_SOCK_DIAG, the interface ss(8) reads: the same
 * sockets as /proc/net/{tcp,tcp6,udp,udp6,unix}, handed over as binary records instead of
 * text, in the caller's network namespace (the one the socket was opened in).
 *
 * Why: on a machine with much memory the kernel's TCP established hash has hundreds of
 * thousands of buckets, and every read of /proc/net/tcp or tcp6 walks all of them, empty or
 * not (about 1 ms each on a 24 GiB VM with 262,144 buckets). One TCPDIAG_GETSOCK dump lists
 * both families in a single walk and formats nothing.
 *
 * Records come to the same callbacks as procfs's text parsers (struct procfs_sock,
 * struct procfs_unix_sock), converted to the text's conventions: an IPv4-mapped IPv6 address
 * is AF_INET, a listener's tx_queue is 0, a unix socket's state is the SS_* number of
 * /proc/net/unix. Unix sockets' paths are not requested: path is always "".
 *
 * Return values, like the parsers': the number of malformed records skipped (0 when all were
 * good), or a negative errno: the first negative value cb returned, -ENOENT or -EOPNOTSUPP
 * when the kernel lacks the protocol's diag module, -ETIMEDOUT when the kernel did not finish
 * a dump within 2 s, or the errno of socket, send or recv. After a dump stopped part-way the
 * caller has seen some records and not others: it discards them.
 *
 * Not thread-safe: one sockdiag_t per thread.
 */
#ifndef AGENT_COLLECT_SOCKDIAG_H
#define AGENT_COLLECT_SOCKDIAG_H

#include "procfs.h"

typedef struct sockdiag sockdiag_t;

/* NULL with errno set when netlink is refused: EPERM (seccomp, an LSM), EAFNOSUPPORT or
 * EPROTONOSUPPORT (gVisor and other sandboxes), ENOMEM. */
sockdiag_t *sockdiag_new(void);
void sockdiag_destroy(sockdiag_t **self_p);

/* Every TCP socket, IPv4 and IPv6, in every state; request sockets are SYN_RECV and a
 * TIME_WAIT socket's state is its substate (TIME_WAIT or FIN_WAIT2), as in /proc/net/tcp. */
int sockdiag_tcp(sockdiag_t *self, procfs_sock_cb cb, void *userdata);

/* Listening TCP sockets only: cheap, whatever the size of the kernel's connection table. */
int sockdiag_tcp_listeners(sockdiag_t *self, procfs_sock_cb cb, void *userdata);

/* UDP sockets of one family (AF_INET or AF_INET6): -EAFNOSUPPORT or -ENOENT for AF_INET6 on a
 * kernel without IPv6. */
int sockdiag_udp(sockdiag_t *self, int family, procfs_sock_cb cb, void *userdata);

/* Unix domain sockets. */
int sockdiag_unix(sockdiag_t *self, procfs_unix_cb cb, void *userdata);

/* One received batch of a dump's replies (len bytes, aligned as recv() hands them over), parsed
 * as a dump of request seq parses it, without a socket: for the fuzz target and tests. Records
 * go to cb as inet (TCP, UDP) records, or to unix_cb as unix ones (exactly one of the two is
 * non-NULL). Returns what a dump returns (the number of malformed records skipped, or a negative
 * errno: the kernel's error, or cb's); *ret_done says whether the batch ended the dump. */
int sockdiag_parse(const void *buf, size_t len, uint32_t seq, procfs_sock_cb cb,
                   procfs_unix_cb unix_cb, void *userdata, bool *ret_done);

#endif
