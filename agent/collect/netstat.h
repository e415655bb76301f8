/*
 * The socket-table collector: TCP states, UDP and unix socket totals, listening sockets with
 * the process that owns them, new listeners, and the remote addresses with the most
 * established connections. The tables come from NETLINK_SOCK_DIAG when proc_root is a real
 * procfs (sockdiag.h), else, or when the kernel refuses it, from the text of
 * <proc_root>/net/{tcp,tcp6,udp,udp6,unix}; the owners from <proc_root>/<pid>/fd and
 * <pid>/comm (the way `ss -p` finds them). Both sources give the same signals.
 *
 * Signals (units in brackets):
 *   net.sockets{proto="tcp",state} [count]  TCP sockets, IPv4 and IPv6 together, per state
 *                                           name (ESTABLISHED, SYN_SENT, SYN_RECV, FIN_WAIT1,
 *                                           FIN_WAIT2, TIME_WAIT, CLOSE, CLOSE_WAIT, LAST_ACK,
 *                                           LISTEN, CLOSING, UNKNOWN). A state is sent when
 *                                           its count is above 0; ESTABLISHED, SYN_RECV,
 *                                           TIME_WAIT and LISTEN are always sent, so a spike
 *                                           from 0 shows as a change, not a new series.
 *   net.sockets{proto="udp"} [count]        UDP sockets, IPv4 and IPv6
 *   net.sockets{proto="unix"} [count]       unix domain sockets
 *   net.listen{proto,address,port,pid,process} [count]
 *                                           one series per listening TCP socket and per bound,
 *                                           unconnected UDP socket (remote 0:0), keyed by
 *                                           proto ("tcp", "udp"), address ("0.0.0.0", "::",
 *                                           "127.0.0.1") and port. The value is the number of
 *                                           sockets on that address (1, or more with
 *                                           SO_REUSEPORT). pid and process (the comm, with
 *                                           bytes outside printable ASCII as '?') name the
 *                                           owner: of several processes holding it, the one
 *                                           with the lowest pid (nginx's master, systemd for
 *                                           socket activation). Both labels are left out when
 *                                           no owner was found: kernel sockets (nfsd), or
 *                                           other users' processes without CAP_SYS_PTRACE.
 *                                           With a podmap (netstat_collector_set_pods), an
 *                                           owner in a pod adds namespace, pod, container
 *                                           and pod_uid (hostNetwork pods: only their
 *                                           sockets are in the node's table).
 *   net.listen.new{proto,address,port,pid,process} [count]
 *                                           value 1, sent once, in the cycle where a listener
 *                                           (proto + address + port) appears that was not
 *                                           there in the previous cycle. The first cycle only
 *                                           records the baseline. A cycle whose tcp or udp
 *                                           files could not be read whole neither reports
 *                                           nor moves the baseline.
 *   net.connections.by_remote{remote} [count]
 *                                           established TCP connections per remote address
 *                                           (no port), the 10 largest, loopback excluded.
 *                                           Exact up to 2048 distinct remote addresses;
 *                                           beyond that a Misra-Gries summary keeps every
 *                                           address with more than 1/2049 of the connections,
 *                                           each count low by at most that share.
 *
 * Network namespace: /proc/net is the network namespace of the reading process. The agent's
 * DaemonSet runs with hostNetwork (and hostPID for the owners), so this is the node's table;
 * without hostNetwork it would be the agent pod's own, nearly empty one. Sockets inside pods'
 * namespaces are not seen.
 *
 * Cost: the kernel's walk of its TCP hash table dominates, and grows with the machine's memory
 * (the table's size), not with the number of sockets: netlink does it once per cycle, the
 * text files twice (tcp, tcp6). Netlink records and the /proc/net files alike are streamed
 * through one fixed buffer, whatever the table's size. The walk of every process's fds runs
 * only when a listener appears whose owner is not yet known; a known owner is re-checked each
 * cycle with one readlink of the fd it was found at. Memory is bounded: at most 2048 listeners are
 * tracked (beyond, counted in ctx->errors and net.listen.new pauses), and the remote-address table
 * is fixed.
 *
 * Errors, counted in ctx->errors and never fatal: an unreadable tcp, udp or unix file (the
 * signals from that file are then not sent rather than sent as 0; a missing tcp6 or udp6 is
 * a kernel without IPv6 and not an error), a file with malformed lines (once per file), more
 * listeners than tracked, and process fd directories that could not be opened for lack of
 * permission (once per walk), and netlink records too short to read (once per table).
 * Processes exiting during the walk are not errors, nor is a netlink dump the kernel refuses or
 * breaks off: what it counted is dropped, that table is read as text in the same cycle and
 * from then on (netstat_collector_source says so).
 */
#ifndef AGENT_COLLECT_NETSTAT_H
#define AGENT_COLLECT_NETSTAT_H

#include "collect.h"
#include "podmap.h"

typedef struct netstat_collector netstat_collector_t;

/* proc_root is "/proc" normally (NULL means that too); tests point it at a fixture tree. */
netstat_collector_t *netstat_collector_new(const char *proc_root);
void netstat_collector_destroy(netstat_collector_t **self_p);

/* Names the pods of listeners' owners through pods (borrowed; it must outlive the collector):
 * net.listen and net.listen.new then carry namespace, pod, container (when told) and pod_uid
 * for an owner in a pod. NULL, the default: no pod labels. */
void netstat_collector_set_pods(netstat_collector_t *self, podmap_t *pods);

/* One cycle. Unreadable sources are skipped and counted in ctx->errors; never fatal. */
void netstat_collector_run(netstat_collector_t *self, struct collect_ctx *ctx);

/* The collector interface (collect.h): "netstat", netstat_collector_run every interval_ms (0:
 * never); takes ownership of *self_p (set to NULL): the collector's destroy frees it. */
struct collector netstat_collector(netstat_collector_t **self_p, int64_t interval_ms);

/* Where the socket tables come from: "netlink", "procfs" (text), or "netlink+procfs" after a
 * table's netlink dump failed and that table fell back to text. For the agent's log. */
const char *netstat_collector_source(const netstat_collector_t *self);

/* Cycles that walked the whole TCP table, and cycles that reused the last walk's per-state
 * counts because the kernel's TCP counters had not moved (netstat.c explains the rule). */
void netstat_collector_walks(const netstat_collector_t *self, uint64_t *ret_walks,
                             uint64_t *ret_skips);

/*
 * Evidence (`vigilctl collect netstat`): the whole socket table of <proc_root>/net ("/proc"
 * when NULL) as text, like `ss -tanup` and `ss -xap` together: one line per TCP, UDP and unix
 * socket with netid, state, receive and send queues, local and peer address, uid, inode and
 * the processes holding it (users:(("nginx",pid=1234,fd=3)), found by walking every
 * <pid>/fd once; ",pod=NAMESPACE/POD/CONTAINER" after fd= for an owner in a pod, when pods
 * is not NULL), then a summary line with the counts by state. A table that cannot be read
 * is named in the artifact, not an error. TCP comes through netlink (one walk of the kernel's
 * table for both families) when proc_root is a real procfs, else, or when the dump fails, from
 * the text files. Thread-safe (shares nothing with the collector).
 * Returns 0; -EFBIG when max_bytes was reached (the artifact ends with a "# truncated" line);
 * the writer's negative errno when it failed; -ENOENT, -EACCES or -ENOMEM when proc_root
 * cannot be opened. err says which in words.
 */
int netstat_write_table(const char *proc_root, podmap_t *pods, size_t max_bytes,
                        const struct artifact_writer *out, char *err, size_t errlen);

#endif
