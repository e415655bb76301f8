/*
 * Parsers for the Linux /proc text the agent's collectors read, plus thin helpers that read a
 * /proc file into a caller's buffer.
 *
 * The parsers do no I/O and no allocation: they take the bytes of a file (buf, len) and fill a
 * caller's struct or call a callback once per record. Every input is treated as hostile: a
 * parser never reads outside [buf, buf + len), does not need a terminating NUL, copes with NUL
 * bytes and binary garbage, and never writes past a fixed-size field.
 *
 * Lines end with '\n', as the kernel always writes them. A final line without one is taken to
 * be truncated and is not used: a cut-off number would otherwise parse as a wrong value.
 *
 * Return values:
 *   - single-record parsers (procfs_parse_stat, _meminfo, ...) return 0, or a negative errno
 *     with their ret_ output untouched;
 *   - per-record parsers (procfs_parse_net_dev, _mounts, _mountinfo, _net_tcp, _net_unix) call
 *     cb for each well-formed record and return the number of malformed lines they skipped (0
 *     when every line was good), or a negative errno: -EINVAL for bad arguments, or the first
 *     negative value cb returned (which stops the walk). cb returns 0 to continue. The struct
 *     passed to cb is borrowed and valid only during the call.
 *
 * /proc/net/{tcp,tcp6,udp,udp6,unix} can be many megabytes when sockets pile up (TIME_WAIT
 * spikes). Their parsers recognise the header line by its content rather than its position,
 * so they can be fed a file in pieces by procfs_read_stream.
 */
#ifndef AGENT_COLLECT_PROCFS_H
#define AGENT_COLLECT_PROCFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- Reading ---------------------------------------------------------------------------- */

/*
 * Reads the whole of a small file (path relative to dirfd, or AT_FDCWD) into buf, which is
 * NUL-terminated, so at most cap - 1 bytes of content fit. *ret_len is the content length.
 * Returns 0; -EFBIG if the file did not fit; -EINVAL if cap is 0; otherwise the negative errno
 * of open or read, passed through: -ENOENT or -ESRCH when a process exited mid-walk, -EACCES
 * for another user's process. On failure the contents of buf are unspecified.
 */
int procfs_read_at(int dirfd, const char *path, char *buf, size_t cap, size_t *ret_len);
int procfs_read(const char *path, char *buf, size_t cap, size_t *ret_len);

/*
 * Reads a file of any size through buf and calls cb with whole lines only: each chunk ends
 * with '\n' and is passed to cb with its length (the '\n' included). Returns 0; the first
 * negative value cb returned; -EFBIG if a single line does not fit in cap bytes; -EINVAL for
 * cap 0; or the negative errno of open or read. A final fragment without '\n' is dropped.
 */
typedef int (*procfs_chunk_cb)(const char *chunk, size_t len, void *userdata);
int procfs_read_stream(int dirfd, const char *path, char *buf, size_t cap, procfs_chunk_cb cb,
                       void *userdata);

/* ---- CPU: /proc/stat -------------------------------------------------------------------- */

/* Jiffies (USER_HZ) from the aggregate "cpu" line. guest time is already inside user/nice. */
struct procfs_cpu {
    uint64_t user;
    uint64_t nice;
    uint64_t system;
    uint64_t idle;
    uint64_t iowait;
    uint64_t irq;
    uint64_t softirq;
    uint64_t steal;
};

/*
 * Fills *ret_cpu from the "cpu " line. Fields the kernel does not print (before iowait, steal
 * existed) are 0. -EINVAL if the line is absent or fewer than user nice system idle parse.
 */
int procfs_parse_stat(const char *buf, size_t len, struct procfs_cpu *ret_cpu);

/*
 * Busy share of the time between two samples, 0..100: busy = total - idle - iowait (steal
 * counts as busy). 0 when no time passed. -ERANGE when a counter went backwards (reset, wrap
 * or the kernel's occasionally decreasing iowait taking idle + iowait below its last value):
 * the caller keeps cur as the new baseline and reports nothing for this interval.
 */
int procfs_cpu_busy_pct(const struct procfs_cpu *prev, const struct procfs_cpu *cur,
                        double *ret_pct);

/* ---- Memory: /proc/meminfo -------------------------------------------------------------- */

struct procfs_mem {
    uint64_t total_bytes;
    uint64_t available_bytes;
    uint64_t swap_total_bytes; /* 0 if the line is absent */
    uint64_t swap_free_bytes;  /* 0 if the line is absent */
    double used_pct;           /* (total - available) / total * 100, clamped to 0..100 */
};

/*
 * -EINVAL if MemTotal or MemAvailable (kernels before 3.14) is missing, MemTotal is 0, or one
 * of the four lines is malformed; -ERANGE if a value in bytes does not fit 64 bits.
 */
int procfs_parse_meminfo(const char *buf, size_t len, struct procfs_mem *ret_mem);

/* ---- Load: /proc/loadavg ---------------------------------------------------------------- */

struct procfs_load {
    double avg1;
    double avg5;
    double avg15;
    uint32_t runnable; /* "3/95": runnable scheduling entities ... */
    uint32_t threads;  /* ... of this many in total */
};

int procfs_parse_loadavg(const char *buf, size_t len, struct procfs_load *ret_load);

/* ---- Network interfaces: /proc/net/dev -------------------------------------------------- */

#define PROCFS_IFNAME_MAX 16 /* IFNAMSIZ: 15 characters and the NUL */

struct procfs_net_dev {
    char name[PROCFS_IFNAME_MAX];
    uint64_t rx_bytes, rx_packets, rx_errs, rx_drop;
    uint64_t tx_bytes, tx_packets, tx_errs, tx_drop;
};

typedef int (*procfs_net_dev_cb)(const struct procfs_net_dev *dev, void *userdata);
/* Skips the two header lines; accepts "eth0:123" with no space after the colon. */
int procfs_parse_net_dev(const char *buf, size_t len, procfs_net_dev_cb cb, void *userdata);

/* ---- OOM kills: /proc/vmstat ------------------------------------------------------------ */

/* The cumulative "oom_kill" counter; -ENOENT on kernels before 4.13, which lack it. */
int procfs_parse_vmstat_oom_kill(const char *buf, size_t len, uint64_t *ret_count);

/* ---- Mounts: /proc/self/mounts ---------------------------------------------------------- */

#define PROCFS_PATH_MAX 4096
#define PROCFS_FSTYPE_MAX 64

struct procfs_mount {
    char device[PROCFS_PATH_MAX];     /* octal escapes (\040 for a space) decoded */
    char mountpoint[PROCFS_PATH_MAX]; /* decoded */
    char fstype[PROCFS_FSTYPE_MAX];   /* "ext4", "fuse.sshfs" */
    bool read_only;                   /* first mount option is "ro" */
};

typedef int (*procfs_mount_cb)(const struct procfs_mount *mount, void *userdata);
/* Lines whose fields are too long, or decode to a NUL byte, are skipped as malformed. */
int procfs_parse_mounts(const char *buf, size_t len, procfs_mount_cb cb, void *userdata);

/* ---- Mounts: /proc/self/mountinfo ------------------------------------------------------- */

/*
 * One line of mountinfo: "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root
 * rw". Beside what mounts says, it names the filesystem (major:minor, as stat's st_dev) and the
 * directory of that filesystem mounted here: "/" for a whole filesystem, deeper for a bind
 * mount (`mount --bind /run/netns /run/netns` on the root filesystem has root "/run/netns").
 */
struct procfs_mountinfo {
    uint32_t mount_id; /* unique among the current mounts */
    uint32_t parent_id;
    uint32_t major, minor;            /* the filesystem's device */
    char root[PROCFS_PATH_MAX];       /* decoded */
    char mountpoint[PROCFS_PATH_MAX]; /* decoded */
    char fstype[PROCFS_FSTYPE_MAX];   /* after the "-" separator: "ext4", "fuse.sshfs" */
    bool read_only;                   /* first per-mount option is "ro" */
};

typedef int (*procfs_mountinfo_cb)(const struct procfs_mountinfo *mount, void *userdata);
/*
 * Any number of optional fields ("shared:1 master:2") may stand before the "-". Lines with
 * a field too long, decoding to a NUL byte, a malformed number, or no "-" and filesystem type
 * are skipped as malformed. The mount source and superblock options are not parsed.
 */
int procfs_parse_mountinfo(const char *buf, size_t len, procfs_mountinfo_cb cb, void *userdata);

/*
 * True for filesystems that disk-usage reporting ignores: kernel pseudo filesystems (proc,
 * sysfs, cgroup, ...), memory-backed ones (tmpfs, devtmpfs, ramfs) and read-only images that
 * are always full (squashfs: snaps). overlay (a container's root), network and FUSE
 * filesystems are real. NULL is pseudo.
 */
bool procfs_fstype_is_pseudo(const char *fstype);

/* ---- Sockets: /proc/net/{tcp,tcp6,udp,udp6,unix} ---------------------------------------- */

/* TCP states as the kernel numbers them; UDP sockets reuse ESTABLISHED (connected) and CLOSE. */
enum procfs_tcp_state {
    PROCFS_TCP_ESTABLISHED = 1,
    PROCFS_TCP_SYN_SENT = 2,
    PROCFS_TCP_SYN_RECV = 3,
    PROCFS_TCP_FIN_WAIT1 = 4,
    PROCFS_TCP_FIN_WAIT2 = 5,
    PROCFS_TCP_TIME_WAIT = 6,
    PROCFS_TCP_CLOSE = 7,
    PROCFS_TCP_CLOSE_WAIT = 8,
    PROCFS_TCP_LAST_ACK = 9,
    PROCFS_TCP_LISTEN = 10,
    PROCFS_TCP_CLOSING = 11,
    PROCFS_TCP_NEW_SYN_RECV = 12,
};

/* "ESTABLISHED", ..., "NEW_SYN_RECV"; "UNKNOWN" for any other number. Never NULL. */
const char *procfs_tcp_state_name(int state);

struct procfs_addr {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network byte order; AF_INET uses the first 4 bytes */
    uint16_t port;    /* host byte order */
};

/* "127.0.0.1:8080" or "[::1]:8080". -ENOSPC if cap is too small, -EINVAL for a bad family. */
int procfs_addr_format(const struct procfs_addr *addr, char *buf, size_t cap);

struct procfs_sock {
    struct procfs_addr local;  /* IPv4-mapped IPv6 (::ffff:a.b.c.d) is reported as AF_INET */
    struct procfs_addr remote; /* 0.0.0.0:0 / [::]:0 for listeners and unconnected UDP */
    int state;                 /* enum procfs_tcp_state for TCP */
    uint32_t tx_queue;         /* bytes; for LISTEN, rx_queue is the accept-queue length */
    uint32_t rx_queue;
    uid_t uid;
    uint64_t inode; /* 0 for TIME_WAIT and request sockets: no process owns them */
};

typedef int (*procfs_sock_cb)(const struct procfs_sock *sock, void *userdata);
/*
 * Lines of /proc/net/tcp or udp (family AF_INET) or tcp6 or udp6 (AF_INET6). Addresses are
 * decoded as the kernel prints them: the in-memory (network order) 32-bit words as hex of a
 * host-order integer, so "0100007F:1F90" is 127.0.0.1:8080 on a little-endian machine.
 */
int procfs_parse_net_tcp(const char *buf, size_t len, int family, procfs_sock_cb cb,
                         void *userdata);

#define PROCFS_UNIX_PATH_MAX 109 /* sun_path (108) and the NUL */

struct procfs_unix_sock {
    uint64_t inode;
    uint32_t flags;
    uint32_t type;  /* SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_SEQPACKET 5 */
    uint32_t state; /* SS_UNCONNECTED 1, SS_CONNECTING 2, SS_CONNECTED 3, SS_DISCONNECTING 4 */
    bool listening; /* __SO_ACCEPTCON in flags */
    char path[PROCFS_UNIX_PATH_MAX]; /* "" if unbound; "@name" for the abstract namespace */
};

typedef int (*procfs_unix_cb)(const struct procfs_unix_sock *sock, void *userdata);
/* A path containing '\n' (legal, printed raw) splits its line; the pieces are skipped. */
int procfs_parse_net_unix(const char *buf, size_t len, procfs_unix_cb cb, void *userdata);

/*
 * The inode of a /proc/PID/fd link target "socket:[12345]" (NUL-terminated, as the collector
 * terminates readlink's result). -ENOTSOCK for other targets ("pipe:[1]", "/dev/null"),
 * -EINVAL for a malformed socket target.
 */
int procfs_socket_inode(const char *link_target, uint64_t *ret_inode);

/* ---- Processes: /proc/PID/{stat,status,cgroup} ------------------------------------------ */

#define PROCFS_COMM_MAX 64 /* kernel threads' names can exceed TASK_COMM_LEN; longer is cut */

struct procfs_pid_stat {
    int pid;
    char comm[PROCFS_COMM_MAX]; /* without the parentheses; may hold spaces and ')' */
    char state;                 /* 'R', 'S', 'D', 'Z', ... */
    int ppid;
    uint32_t num_threads;
    uint64_t utime;     /* clock ticks */
    uint64_t stime;     /* clock ticks */
    uint64_t starttime; /* clock ticks after boot: with pid, identifies a process over time */
    uint64_t rss_pages;
};

/* The comm ends at the last ')' in the buffer. -EINVAL for anything malformed or truncated. */
int procfs_parse_pid_stat(const char *buf, size_t len, struct procfs_pid_stat *ret_stat);

/* The real uid from the "Uid:" line of /proc/PID/status. -EINVAL if absent or malformed. */
int procfs_parse_pid_status_uid(const char *buf, size_t len, uid_t *ret_uid);

#define PROCFS_CONTAINER_ID_MAX 65 /* 64 lowercase hex digits and the NUL */
#define PROCFS_POD_UID_MAX 37      /* a UUID (36) or a static pod's 32-hex hash, and the NUL */

struct procfs_cgroup_ids {
    char container_id[PROCFS_CONTAINER_ID_MAX]; /* "" if none */
    char pod_uid[PROCFS_POD_UID_MAX];           /* "" if none; '_' of systemd slices -> '-' */
};

/*
 * From /proc/PID/cgroup (v1 and v2 forms): the container id of docker-<id>.scope,
 * cri-containerd-<id>.scope, crio-<id>.scope (crio-<id> under the cgroupfs driver),
 * libpod-<id>.scope or a bare 64-hex path component
 * (/docker/<id>, /kubepods/.../pod<uid>/<id>), the innermost on a path; and the pod uid of a
 * kubepods path (pod<uuid> or kubepods-<qos>-pod<uuid_with_underscores>.slice). Container
 * runtimes' monitor scopes (crio-conmon-<id>, libpod-conmon-<id>) are not containers.
 * -ENOENT if neither id is present.
 */
int procfs_parse_cgroup(const char *buf, size_t len, struct procfs_cgroup_ids *ret_ids);

/* A pid or fd directory name from /proc: 1 to 10 digits, no sign, within int. */
bool procfs_parse_id(const char *text, int *ret);

#endif
