/* The socket-table collector against a hand-written /proc tree: what a user would see. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "artifact_sink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netstat.h"
#include "proctable.h" /* artifact_escape */
#include "sockdiag.h"
#include "wire.h"

static char root[64];

static const char *const TCP_HEADER =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
    "timeout inode\n";
static const char *const UDP_HEADER =
    "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
    "timeout inode ref pointer drops\n";
static const char *const UNIX_HEADER = "Num       RefCount Protocol Flags    Type St Inode Path\n";

enum { ESTABLISHED = 1, SYN_RECV = 3, TIME_WAIT = 6, CLOSE = 7, LISTEN = 10 };

/* ---- Building the fake /proc ------------------------------------------------------------ */

static void path_of(char *buf, size_t cap, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", root, name);
    assert_true(n > 0 && (size_t)n < cap);
}

static void make_dir(const char *name)
{
    char path[256];
    path_of(path, sizeof(path), name);
    assert_int_equal(mkdir(path, 0755), 0);
}

static void put(const char *name, const char *text)
{
    char path[256];
    path_of(path, sizeof(path), name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static FILE *open_table(const char *name, const char *header)
{
    char path[256];
    path_of(path, sizeof(path), name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(header, f);
    return f;
}

/* The kernel's form: each 32-bit word of the address as the hex of a host-order integer. */
static void addr_hex(int family, const char *ip, char *out, size_t cap)
{
    uint8_t bytes[16];
    assert_int_equal(inet_pton(family, ip, bytes), 1);
    size_t words = family == AF_INET ? 1 : 4;
    assert_true(cap > words * 8);
    for (size_t w = 0; w < words; w++) {
        uint32_t word;
        memcpy(&word, bytes + w * 4, sizeof(word));
        snprintf(out + w * 8, cap - w * 8, "%08X", word);
    }
}

static void add_sock(FILE *f, int family, const char *local, unsigned lport, const char *remote,
                     unsigned rport, int state, unsigned long long inode)
{
    static unsigned slot;
    char l[33], r[33];
    addr_hex(family, local, l, sizeof(l));
    addr_hex(family, remote, r, sizeof(r));
    fprintf(f,
            "%4u: %s:%04X %s:%04X %02X 00000000:00000000 00:00000000 00000000  1000        0 "
            "%llu 1 0000000000000000 100 0 0 10 0\n",
            slot++ % 1000, l, lport, r, rport, state, inode);
}

static void add_unix(FILE *f, unsigned long long inode, const char *path)
{
    fprintf(f, "0000000000000000: 00000002 00000000 00010000 0001 01 %llu %s\n", inode, path);
}

static void link_fd(int pid, int fd, unsigned long long inode)
{
    char path[256], target[64];
    snprintf(path, sizeof(path), "%s/%d/fd/%d", root, pid, fd);
    snprintf(target, sizeof(target), "socket:[%llu]", inode);
    unlink(path);
    assert_int_equal(symlink(target, path), 0);
}

static void make_process(int pid, const char *comm)
{
    char name[64];
    snprintf(name, sizeof(name), "%d", pid);
    make_dir(name);
    snprintf(name, sizeof(name), "%d/fd", pid);
    make_dir(name);
    snprintf(name, sizeof(name), "%d/comm", pid);
    put(name, comm);
}

static void write_tcp(bool with_9443)
{
    FILE *f = open_table("net/tcp", TCP_HEADER);
    add_sock(f, AF_INET, "0.0.0.0", 8080, "0.0.0.0", 0, LISTEN, 1001);
    add_sock(f, AF_INET, "127.0.0.1", 9000, "0.0.0.0", 0, LISTEN, 1003); /* no owner */
    if (with_9443)
        add_sock(f, AF_INET, "0.0.0.0", 9443, "0.0.0.0", 0, LISTEN, 1004);
    add_sock(f, AF_INET, "10.0.0.5", 8080, "10.1.2.3", 40001, ESTABLISHED, 2001);
    add_sock(f, AF_INET, "10.0.0.5", 8080, "10.9.9.9", 40000, ESTABLISHED, 2004);
    add_sock(f, AF_INET, "10.0.0.5", 8080, "10.1.2.3", 40002, ESTABLISHED, 2002);
    add_sock(f, AF_INET, "10.0.0.5", 8080, "10.1.2.3", 40003, ESTABLISHED, 2003);
    add_sock(f, AF_INET, "10.0.0.5", 8080, "10.1.2.3", 39000, TIME_WAIT, 0);
    add_sock(f, AF_INET, "10.0.0.5", 8080, "10.4.4.4", 39001, TIME_WAIT, 0);
    add_sock(f, AF_INET, "10.0.0.5", 8080, "10.5.5.5", 39002, SYN_RECV, 0);
    /* Loopback both ways: counted by state, never a top talker. */
    add_sock(f, AF_INET, "127.0.0.1", 9000, "127.0.0.1", 50000, ESTABLISHED, 2101);
    add_sock(f, AF_INET, "127.0.0.1", 50000, "127.0.0.1", 9000, ESTABLISHED, 2102);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/vigil-netstat-XXXXXX");
    assert_non_null(mkdtemp(root));
    make_dir("net");
    write_tcp(false);

    FILE *f = open_table("net/tcp6", TCP_HEADER);
    add_sock(f, AF_INET6, "::", 5432, "::", 0, LISTEN, 1002);
    add_sock(f, AF_INET6, "::1", 5432, "::1", 41000, ESTABLISHED, 2201);
    add_sock(f, AF_INET6, "2001:db8::5", 5432, "2001:db8::77", 41001, ESTABLISHED, 2202);
    fclose(f);

    /* No udp6: a kernel without IPv6 is not an error. */
    f = open_table("net/udp", UDP_HEADER);
    add_sock(f, AF_INET, "0.0.0.0", 53, "0.0.0.0", 0, CLOSE, 3001);
    add_sock(f, AF_INET, "10.0.0.5", 40000, "10.0.0.53", 53, ESTABLISHED, 3002); /* a client */
    fclose(f);

    f = open_table("net/unix", UNIX_HEADER);
    add_unix(f, 4001, "/run/containerd/containerd.sock");
    add_unix(f, 4002, "@/tmp/.X11-unix/X0");
    add_unix(f, 4003, "");
    fclose(f);

    make_process(1234, "nginx\n");
    link_fd(1234, 3, 1001);
    link_fd(1234, 4, 1002);
    link_fd(1234, 7, 2001);
    put("1234/fd/0", ""); /* not a link: skipped like /dev/null */
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    (void)state;
    return nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- Reading the batch ------------------------------------------------------------------ */

struct run {
    netstat_collector_t *collector;
    sigbuf_t *batch;
    struct collect_ctx ctx;
    Vigil__Envelope *env;
};

static void run_open(struct run *r, const char *proc_root)
{
    r->collector = netstat_collector_new(proc_root);
    assert_non_null(r->collector);
    r->batch = sigbuf_new();
    assert_non_null(r->batch);
    r->ctx = (struct collect_ctx){.batch = r->batch, .now_ms = 1000};
    r->env = NULL;
}

/* One cycle, decoded the way the coordinator will see it. */
static void run_cycle(struct run *r)
{
    uint8_t *buf;
    size_t len;
    if (r->env)
        vg_envelope_free(r->env);
    r->env = NULL;
    sigbuf_clear(r->batch);
    r->ctx.errors = 0;
    netstat_collector_run(r->collector, &r->ctx);
    if (sigbuf_count(r->batch) == 0)
        return; /* an empty batch is never sent */
    assert_int_equal(sigbuf_encode(r->batch, "ag-0123456789abcdef", 1, &buf, &len), 0);
    assert_int_equal(vg_envelope_decode(buf, len, &r->env, NULL), VG_DECODE_OK);
    free(buf);
}

static void run_close(struct run *r)
{
    if (r->env)
        vg_envelope_free(r->env);
    sigbuf_destroy(&r->batch);
    netstat_collector_destroy(&r->collector);
    assert_null(r->collector);
}

static const char *label(const Vigil__Signal *s, const char *key)
{
    for (size_t j = 0; j < s->n_labels; j++) {
        if (strcmp(s->labels[j]->key, key) == 0)
            return s->labels[j]->value;
    }
    return NULL;
}

/* The first signal called name whose labels include k1=v1 and k2=v2 (NULL: any). */
static const Vigil__Signal *find(const struct run *r, const char *name, const char *k1,
                                 const char *v1, const char *k2, const char *v2)
{
    if (!r->env)
        return NULL;
    for (size_t i = 0; i < r->env->signals->n_signals; i++) {
        const Vigil__Signal *s = r->env->signals->signals[i];
        if (strcmp(s->name, name) != 0)
            continue;
        const char *got1 = k1 ? label(s, k1) : NULL;
        const char *got2 = k2 ? label(s, k2) : NULL;
        if ((k1 && (!got1 || strcmp(got1, v1) != 0)) || (k2 && (!got2 || strcmp(got2, v2) != 0)))
            continue;
        return s;
    }
    return NULL;
}

static size_t count(const struct run *r, const char *name)
{
    size_t n = 0;
    if (!r->env)
        return 0;
    for (size_t i = 0; i < r->env->signals->n_signals; i++)
        n += strcmp(r->env->signals->signals[i]->name, name) == 0;
    return n;
}

static double tcp_state(const struct run *r, const char *state)
{
    const Vigil__Signal *s = find(r, "net.sockets", "proto", "tcp", "state", state);
    assert_non_null(s);
    return s->value;
}

/* ---- Tests ------------------------------------------------------------------------------ */

static void test_counts_owners_and_top_talkers(void **state)
{
    (void)state;
    struct run r;
    run_open(&r, root);
    run_cycle(&r);
    assert_int_equal(r.ctx.errors, 0);

    /* States: tcp and tcp6 together; the four watched states always present. */
    assert_true(tcp_state(&r, "ESTABLISHED") == 8);
    assert_true(tcp_state(&r, "LISTEN") == 3);
    assert_true(tcp_state(&r, "TIME_WAIT") == 2);
    assert_true(tcp_state(&r, "SYN_RECV") == 1);
    assert_null(find(&r, "net.sockets", "state", "CLOSE_WAIT", NULL, NULL));
    assert_true(find(&r, "net.sockets", "proto", "udp", NULL, NULL)->value == 2);
    assert_true(find(&r, "net.sockets", "proto", "unix", NULL, NULL)->value == 3);

    /* Listeners with the owner found through 1234/fd, as ss -p shows them. */
    const Vigil__Signal *l = find(&r, "net.listen", "port", "8080", NULL, NULL);
    assert_non_null(l);
    assert_true(l->value == 1);
    assert_string_equal(label(l, "proto"), "tcp");
    assert_string_equal(label(l, "address"), "0.0.0.0");
    assert_string_equal(label(l, "process"), "nginx");
    assert_string_equal(label(l, "pid"), "1234");
    l = find(&r, "net.listen", "port", "5432", NULL, NULL);
    assert_non_null(l);
    assert_string_equal(label(l, "address"), "::");
    assert_string_equal(label(l, "process"), "nginx");
    /* No process holds 9000 or udp 53: listed, without an owner. */
    l = find(&r, "net.listen", "port", "9000", NULL, NULL);
    assert_non_null(l);
    assert_string_equal(label(l, "address"), "127.0.0.1");
    assert_null(label(l, "process"));
    assert_null(label(l, "pid"));
    l = find(&r, "net.listen", "port", "53", "proto", "udp");
    assert_non_null(l);
    assert_null(find(&r, "net.listen", "port", "40000", NULL, NULL)); /* connected UDP */
    assert_int_equal(count(&r, "net.listen"), 4);
    /* The first cycle is the baseline: nothing is new yet. */
    assert_int_equal(count(&r, "net.listen.new"), 0);

    /* Top talkers: 10.1.2.3 first with its 3 established connections; loopback left out. */
    const Vigil__Signal *first = find(&r, "net.connections.by_remote", NULL, NULL, NULL, NULL);
    assert_non_null(first);
    assert_string_equal(label(first, "remote"), "10.1.2.3");
    assert_true(first->value == 3);
    assert_true(find(&r, "net.connections.by_remote", "remote", "10.9.9.9", NULL, NULL)->value ==
                1);
    assert_true(
        find(&r, "net.connections.by_remote", "remote", "2001:db8::77", NULL, NULL)->value == 1);
    assert_null(find(&r, "net.connections.by_remote", "remote", "127.0.0.1", NULL, NULL));
    assert_null(find(&r, "net.connections.by_remote", "remote", "::1", NULL, NULL));
    assert_int_equal(count(&r, "net.connections.by_remote"), 3);
    run_close(&r);
}

static void test_new_listener_reported_once(void **state)
{
    (void)state;
    struct run r;
    run_open(&r, root);
    run_cycle(&r);
    assert_int_equal(count(&r, "net.listen.new"), 0);

    /* nginx opens 9443. */
    write_tcp(true);
    link_fd(1234, 5, 1004);
    run_cycle(&r);
    assert_int_equal(count(&r, "net.listen.new"), 1);
    const Vigil__Signal *n = find(&r, "net.listen.new", "port", "9443", NULL, NULL);
    assert_non_null(n);
    assert_true(n->value == 1);
    assert_string_equal(label(n, "proto"), "tcp");
    assert_string_equal(label(n, "address"), "0.0.0.0");
    assert_string_equal(label(n, "process"), "nginx");
    assert_string_equal(label(n, "pid"), "1234");
    assert_non_null(find(&r, "net.listen", "port", "9443", NULL, NULL));

    /* Still there: not new any more. */
    run_cycle(&r);
    assert_int_equal(count(&r, "net.listen.new"), 0);
    assert_non_null(find(&r, "net.listen", "port", "9443", NULL, NULL));

    /* Closed, then opened again: new again. */
    write_tcp(false);
    run_cycle(&r);
    assert_int_equal(count(&r, "net.listen.new"), 0);
    assert_null(find(&r, "net.listen", "port", "9443", NULL, NULL));
    write_tcp(true);
    run_cycle(&r);
    assert_int_equal(count(&r, "net.listen.new"), 1);
    assert_non_null(find(&r, "net.listen.new", "port", "9443", NULL, NULL));
    run_close(&r);
}

static void test_unreadable_cycle_keeps_baseline(void **state)
{
    (void)state;
    char path[256];
    struct run r;
    run_open(&r, root);
    run_cycle(&r);

    /* net/tcp unreadable for one cycle: no TCP numbers (not zeros), nothing "new" ... */
    path_of(path, sizeof(path), "net/tcp");
    char moved[300];
    snprintf(moved, sizeof(moved), "%s.away", path);
    assert_int_equal(rename(path, moved), 0);
    run_cycle(&r);
    assert_true(r.ctx.errors >= 1);
    assert_null(find(&r, "net.sockets", "proto", "tcp", NULL, NULL));
    assert_null(find(&r, "net.connections.by_remote", NULL, NULL, NULL, NULL));
    assert_non_null(find(&r, "net.sockets", "proto", "udp", NULL, NULL));
    assert_int_equal(count(&r, "net.listen.new"), 0);

    /* ... and when it is back, its listeners were there all along. */
    assert_int_equal(rename(moved, path), 0);
    run_cycle(&r);
    assert_int_equal(r.ctx.errors, 0);
    assert_int_equal(count(&r, "net.listen.new"), 0);
    run_close(&r);
}

static void test_owner_change_is_noticed(void **state)
{
    (void)state;
    struct run r;
    run_open(&r, root);
    run_cycle(&r);
    assert_string_equal(label(find(&r, "net.listen", "port", "8080", NULL, NULL), "pid"), "1234");

    /* 1234 exits; its child 1300, renamed to something hostile, keeps the socket. */
    char path[256];
    path_of(path, sizeof(path), "1234/fd/3");
    assert_int_equal(unlink(path), 0);
    make_process(1300, "ev\001il,pid=1\n");
    link_fd(1300, 9, 1001);
    run_cycle(&r);
    const Vigil__Signal *l = find(&r, "net.listen", "port", "8080", NULL, NULL);
    assert_non_null(l);
    assert_string_equal(label(l, "pid"), "1300");
    assert_string_equal(label(l, "process"), "ev?il?pid?1");
    assert_string_equal(label(find(&r, "net.listen", "port", "5432", NULL, NULL), "pid"), "1234");
    assert_int_equal(count(&r, "net.listen.new"), 0); /* same socket, another owner */
    run_close(&r);
}

static void test_missing_and_malformed_sources(void **state)
{
    (void)state;
    struct run r;
    run_open(&r, "/nonexistent-proc");
    run_cycle(&r);
    assert_int_equal(sigbuf_count(r.batch), 0);
    assert_true(r.ctx.errors >= 3); /* tcp, udp, unix */
    run_cycle(&r);
    assert_int_equal(sigbuf_count(r.batch), 0);
    run_close(&r);

    /* Only tcp, with garbage in it: the good lines count, the rest is an error. */
    char path[256];
    path_of(path, sizeof(path), "net/udp");
    assert_int_equal(unlink(path), 0);
    path_of(path, sizeof(path), "net/unix");
    assert_int_equal(unlink(path), 0);
    FILE *f = open_table("net/tcp", TCP_HEADER);
    add_sock(f, AF_INET, "0.0.0.0", 8080, "0.0.0.0", 0, LISTEN, 1001);
    fputs("   1: 0100007F:ZZZZ 00000000:0000 0A garbage\n\x01\x02\xff binary\n", f);
    add_sock(f, AF_INET, "10.0.0.5", 8080, "10.1.2.3", 40001, ESTABLISHED, 2001);
    fputs("   3: 0100007F:1F90 00000000:0000 0A 00000000:000", f); /* cut off */
    fclose(f);
    run_open(&r, root);
    run_cycle(&r);
    assert_int_equal(r.ctx.errors, 3);         /* udp, unix, malformed tcp lines */
    assert_true(tcp_state(&r, "LISTEN") == 2); /* 8080 and tcp6's 5432 */
    assert_true(tcp_state(&r, "ESTABLISHED") == 3);
    assert_null(find(&r, "net.sockets", "proto", "udp", NULL, NULL));
    assert_null(find(&r, "net.sockets", "proto", "unix", NULL, NULL));
    assert_non_null(find(&r, "net.listen", "port", "8080", NULL, NULL));
    run_close(&r);
}

static void test_large_table_is_streamed(void **state)
{
    (void)state;
    /* 10,000 lines (about 1.5 MB): 3,900 TIME_WAIT, 6,000 connections from distinct
     * addresses (more than the remote table holds) and 100 from one busy client among them. */
    FILE *f = open_table("net/tcp", TCP_HEADER);
    add_sock(f, AF_INET, "0.0.0.0", 8080, "0.0.0.0", 0, LISTEN, 1001);
    unsigned long long inode = 100000;
    int busy = 0;
    for (int i = 0; i < 9999; i++) {
        char remote[32];
        if (i % 100 == 50 && busy < 100) {
            add_sock(f, AF_INET, "10.0.0.5", 8080, "192.168.7.7", 20000 + (unsigned)i, ESTABLISHED,
                     inode++);
            busy++;
        } else if (i % 10 < 4) {
            add_sock(f, AF_INET, "10.0.0.5", 8080, "10.200.0.1", 20000 + (unsigned)i, TIME_WAIT, 0);
        } else {
            snprintf(remote, sizeof(remote), "10.%d.%d.%d", 50 + i / 65536, (i / 256) % 256,
                     i % 256);
            add_sock(f, AF_INET, "10.0.0.5", 8080, remote, 30000, ESTABLISHED, inode++);
        }
    }
    fclose(f);
    struct stat st;
    char path[256];
    path_of(path, sizeof(path), "net/tcp");
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size > 1000 * 1000);

    struct run r;
    run_open(&r, root);
    run_cycle(&r);
    assert_int_equal(r.ctx.errors, 0);
    double established = tcp_state(&r, "ESTABLISHED"), time_wait = tcp_state(&r, "TIME_WAIT");
    assert_true(tcp_state(&r, "LISTEN") == 2);
    assert_true(time_wait + established == 9999 + 2 /* tcp6 */);
    assert_true(time_wait > 3800 && time_wait < 4100);
    /* The busy client tops the list, its count at most 10,000 / 2,049 low. */
    const Vigil__Signal *top = find(&r, "net.connections.by_remote", NULL, NULL, NULL, NULL);
    assert_non_null(top);
    assert_string_equal(label(top, "remote"), "192.168.7.7");
    assert_true(busy == 100 && top->value >= 95 && top->value <= 100);
    assert_true(count(&r, "net.connections.by_remote") <= 10);
    assert_string_equal(label(find(&r, "net.listen", "port", "8080", NULL, NULL), "process"),
                        "nginx");
    run_close(&r);
}

/* ---- The evidence writer ---------------------------------------------------------------- */

static int write_table(struct sink *s, const char *proc_root, size_t cap, char *err, size_t errlen)
{
    struct artifact_writer out = {sink_write, s};
    err[0] = '\0';
    return netstat_write_table(proc_root, NULL, cap, &out, err, errlen);
}

/* The one line containing a, b and c (NULL: no condition); fails unless exactly one does. */
static const char *only_line(const struct sink *s, const char *a, const char *b, const char *c)
{
    static char found[2048];
    size_t matches = 0;
    for (const char *p = s->data; p && *p;) {
        const char *end = strchr(p, '\n');
        assert_non_null(end);
        char line[2048];
        snprintf(line, sizeof(line), "%.*s", (int)(end - p), p);
        if (strstr(line, a) && (!b || strstr(line, b)) && (!c || strstr(line, c))) {
            matches++;
            memcpy(found, line, sizeof(found));
        }
        p = end + 1;
    }
    if (matches != 1)
        fail_msg("%zu lines match", matches);
    return found;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void test_table_shows_sockets_with_owners(void **state)
{
    (void)state;
    /* A second process holds nginx's 8080 too (a forked worker, renamed to something odd). */
    make_process(1300, "ev\001il\"\n");
    link_fd(1300, 9, 1001);
    struct sink s = {0};
    char err[256];
    assert_int_equal(write_table(&s, root, 1 << 20, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    for (size_t i = 0; i < s.len; i++) /* nothing raw from a process reaches the terminal */
        assert_true(s.data[i] == '\n' || (s.data[i] >= 0x20 && s.data[i] <= 0x7e));

    /* As ss -tanup shows them: every owner of a socket, with the fd it holds it at. */
    const char *l = only_line(&s, "tcp ", " LISTEN ", " 0.0.0.0:8080 ");
    assert_non_null(strstr(l, " 0.0.0.0:* "));
    assert_non_null(strstr(l, " 1000 "));
    assert_true(ends_with(l, " 1001 users:((\"nginx\",pid=1234,fd=3),(\"ev\\x01il\\x22\",pid=1300,"
                             "fd=9))"));
    l = only_line(&s, "tcp6 ", " LISTEN ", " [::]:5432 ");
    assert_true(ends_with(l, " users:((\"nginx\",pid=1234,fd=4))"));
    l = only_line(&s, " 127.0.0.1:9000 ", " LISTEN ", NULL);
    assert_true(ends_with(l, " 1003 -")); /* no process holds it */
    l = only_line(&s, " ESTABLISHED ", " 10.1.2.3:40001 ", NULL);
    assert_true(strncmp(l, "tcp ", 4) == 0);
    assert_non_null(strstr(l, " 10.0.0.5:8080 "));
    assert_true(ends_with(l, " users:((\"nginx\",pid=1234,fd=7))"));
    only_line(&s, " TIME_WAIT ", " 10.4.4.4:39001 ", NULL);
    only_line(&s, " ESTABLISHED ", " [2001:db8::77]:41001 ", NULL);
    l = only_line(&s, "udp ", " UNCONN ", " 0.0.0.0:53 ");
    assert_true(ends_with(l, " 3001 -"));
    only_line(&s, "udp ", " ESTABLISHED ", " 10.0.0.53:53 ");
    only_line(&s, "u_str ", " /run/containerd/containerd.sock ", " 4001 ");
    only_line(&s, "u_str ", " @/tmp/.X11-unix/X0 ", NULL);
    only_line(&s, "u_str ", " 4003 ", NULL);
    /* Then the counts, as the collector's signals count them. */
    assert_true(ends_with(s.data, "# tcp: 14 sockets (ESTABLISHED 8, SYN_RECV 1, TIME_WAIT 2, "
                                  "LISTEN 3); udp: 2; unix: 3\n"));
    assert_non_null(strstr(s.data, "4 socket fds in 2 processes"));
    free(s.data);
}

/* hostNetwork pods: a listener's owner in a pod carries its names, in signals and evidence. */
static void test_owner_in_pod(void **state)
{
    (void)state;
    char pods[300], containers[300];
    put("1234/cgroup", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
                       "8f14e45f_ceea_467f_a0e6_5c1a7f2b3d4e.slice/cri-containerd-"
                       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope\n");
    make_dir("pods");
    make_dir("pods/ingress_nginx-0_8f14e45f-ceea-467f-a0e6-5c1a7f2b3d4e");
    make_dir("pods/ingress_nginx-0_8f14e45f-ceea-467f-a0e6-5c1a7f2b3d4e/controller");
    make_dir("containers");
    path_of(pods, sizeof(pods), "pods");
    path_of(containers, sizeof(containers), "containers");
    podmap_t *map = podmap_new(pods, containers);
    assert_non_null(map);

    struct run r;
    run_open(&r, root);
    netstat_collector_set_pods(r.collector, map);
    run_cycle(&r);
    const Vigil__Signal *l = find(&r, "net.listen", "port", "8080", NULL, NULL);
    assert_non_null(l);
    assert_string_equal(label(l, "process"), "nginx");
    assert_string_equal(label(l, "namespace"), "ingress");
    assert_string_equal(label(l, "pod"), "nginx-0");
    assert_string_equal(label(l, "pod_uid"), "8f14e45f-ceea-467f-a0e6-5c1a7f2b3d4e");
    /* /var/log/containers does not name this container id: the container is not guessed. */
    assert_null(label(l, "container"));
    /* A listener without an owner has no pod. */
    assert_null(label(find(&r, "net.listen", "port", "9000", NULL, NULL), "pod"));
    run_cycle(&r); /* from the cache, the same labels */
    l = find(&r, "net.listen", "port", "8080", NULL, NULL);
    assert_string_equal(label(l, "namespace"), "ingress");
    run_close(&r);

    struct sink s = {0};
    struct artifact_writer out = {sink_write, &s};
    char err[256] = "";
    assert_int_equal(netstat_write_table(root, map, 1 << 20, &out, err, sizeof(err)), 0);
    const char *line = only_line(&s, "tcp ", " LISTEN ", " 0.0.0.0:8080 ");
    assert_true(ends_with(line, " users:((\"nginx\",pid=1234,fd=3,pod=ingress/nginx-0/-))"));
    free(s.data);
    podmap_destroy(&map);
}

static void test_table_cap_and_writer_errors(void **state)
{
    (void)state;
    struct sink full = {0};
    char err[256];
    assert_int_equal(write_table(&full, root, 1 << 20, err, sizeof(err)), 0);
    const size_t caps[] = {0, 100, 700, full.len / 2, full.len - 1};
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        struct sink s = {0};
        assert_int_equal(write_table(&s, root, caps[i], err, sizeof(err)), -EFBIG);
        assert_true(s.len <= caps[i]);
        assert_non_null(strstr(err, "cap"));
        if (caps[i] >= 100) {
            assert_true(ends_with(s.data, " bytes\n"));
            assert_non_null(strstr(s.data, "# truncated: "));
            size_t kept = (size_t)(strstr(s.data, "# truncated: ") - s.data);
            assert_memory_equal(s.data, full.data, kept); /* whole lines of the full table */
        }
        free(s.data);
    }
    free(full.data);

    /* A writer that fails stops the dump: nothing is written after the failure. */
    struct sink failing = {.fail_after = 2, .fail_with = -ENOSPC};
    assert_int_equal(write_table(&failing, root, 1 << 20, err, sizeof(err)), -ENOSPC);
    assert_int_equal(failing.calls, 2);
    assert_non_null(strstr(err, strerror(ENOSPC)));
    free(failing.data);

    struct sink none = {0};
    assert_int_equal(write_table(&none, "/nonexistent-proc", 4096, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "/nonexistent-proc"));
    assert_int_equal(none.len, 0);
}

/* ---- This machine ----------------------------------------------------------------------- */

static int listen_on(int family, int type, uint16_t *ret_port)
{
    int fd = socket(family, type | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof(*a);
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || (type == SOCK_STREAM && listen(fd, 8) < 0) ||
        getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        close(fd);
        return -1;
    }
    *ret_port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                        : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

static uint64_t fd_inode(int fd)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    return (uint64_t)st.st_ino;
}

struct listen_count {
    uint64_t listen;
    size_t mine; /* of the inodes below, seen in LISTEN (TCP) or bound (UDP) */
    const uint64_t *inodes;
    size_t ninodes;
};

static int count_sock(const struct procfs_sock *s, void *userdata)
{
    struct listen_count *c = userdata;
    c->listen += s->state == 10;
    for (size_t i = 0; i < c->ninodes; i++)
        c->mine += s->inode == c->inodes[i];
    return 0;
}

static int count_chunk(const char *chunk, size_t len, void *userdata)
{
    return procfs_parse_net_tcp(chunk, len, AF_INET, count_sock, userdata) < 0 ? -EINVAL : 0;
}

static int count_chunk6(const char *chunk, size_t len, void *userdata)
{
    return procfs_parse_net_tcp(chunk, len, AF_INET6, count_sock, userdata) < 0 ? -EINVAL : 0;
}

/* The LISTEN count of /proc/net/tcp and tcp6, the text path. */
static void text_listen(struct listen_count *c)
{
    char buf[16384];
    assert_int_equal(
        procfs_read_stream(AT_FDCWD, "/proc/net/tcp", buf, sizeof(buf), count_chunk, c), 0);
    int r = procfs_read_stream(AT_FDCWD, "/proc/net/tcp6", buf, sizeof(buf), count_chunk6, c);
    assert_true(r == 0 || r == -ENOENT);
}

/* The netlink path (the collector's on a real /proc) and the text path count the same
 * listeners, and both see the ones this test opened. */
static void test_netlink_agrees_with_text(void **state)
{
    (void)state;
    sockdiag_t *diag = sockdiag_new();
    if (!diag) {
        print_message("netlink sock_diag refused here (%s): nothing to compare\n", strerror(errno));
        skip();
    }
    uint64_t inodes[6];
    int fds[6];
    size_t n = 0;
    uint16_t port;
    for (int i = 0; i < 4; i++) {
        fds[n] = listen_on(AF_INET, SOCK_STREAM, &port);
        assert_true(fds[n] >= 0);
        inodes[n] = fd_inode(fds[n]);
        n++;
    }
    fds[n] = listen_on(AF_INET6, SOCK_STREAM, &port); /* where IPv6 exists */
    if (fds[n] >= 0) {
        inodes[n] = fd_inode(fds[n]);
        n++;
    }

    /* Other processes may open or close listeners between the two reads: a few tries. */
    struct listen_count by_diag, by_text;
    for (int attempt = 0; attempt < 20; attempt++) {
        by_diag = (struct listen_count){.inodes = inodes, .ninodes = n};
        by_text = (struct listen_count){.inodes = inodes, .ninodes = n};
        assert_true(sockdiag_tcp(diag, count_sock, &by_diag) >= 0);
        text_listen(&by_text);
        if (by_diag.listen == by_text.listen)
            break;
        usleep(50 * 1000);
    }
    assert_int_equal(by_diag.listen, by_text.listen);
    assert_true(by_diag.listen >= n);
    assert_int_equal(by_diag.mine, n);
    assert_int_equal(by_text.mine, n);

    /* UDP and unix: the dumps work and see a bound socket of ours. */
    int udp = listen_on(AF_INET, SOCK_DGRAM, &port);
    assert_true(udp >= 0);
    uint64_t udp_inode = fd_inode(udp);
    struct listen_count udp_seen = {.inodes = &udp_inode, .ninodes = 1};
    assert_true(sockdiag_udp(diag, AF_INET, count_sock, &udp_seen) >= 0);
    assert_int_equal(udp_seen.mine, 1);
    close(udp);
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
    sockdiag_destroy(&diag);
    assert_null(diag);
}

/* The collector on this machine's /proc (netlink) and on a tree whose net and pid entries
 * link to it (text) reports the same listener of ours, with this process as its owner. */
static void test_collector_sources_agree(void **state)
{
    (void)state;
    uint16_t port, udp_port;
    int fd = listen_on(AF_INET, SOCK_STREAM, &port);
    int udp = listen_on(AF_INET, SOCK_DGRAM, &udp_port);
    assert_true(fd >= 0 && udp >= 0);
    char link_root[64], path[128], target[64];
    snprintf(link_root, sizeof(link_root), "/tmp/vigil-netstat-link-XXXXXX");
    assert_non_null(mkdtemp(link_root));
    snprintf(path, sizeof(path), "%s/net", link_root);
    assert_int_equal(symlink("/proc/self/net", path), 0);
    snprintf(path, sizeof(path), "%s/%d", link_root, (int)getpid());
    snprintf(target, sizeof(target), "/proc/%d", (int)getpid());
    assert_int_equal(symlink(target, path), 0);

    struct run live, text;
    run_open(&live, NULL);
    run_open(&text, link_root);
    assert_string_equal(netstat_collector_source(text.collector), "procfs");
    sockdiag_t *probe = sockdiag_new();
    bool netlink = probe != NULL; /* where netlink works, the collector uses it */
    if (!netlink)
        print_message("netlink refused here: both read text\n");
    sockdiag_destroy(&probe);
    char port_text[8], udp_text[8], pid_text[16];
    snprintf(port_text, sizeof(port_text), "%u", (unsigned)port);
    snprintf(udp_text, sizeof(udp_text), "%u", (unsigned)udp_port);
    snprintf(pid_text, sizeof(pid_text), "%d", (int)getpid());
    for (int attempt = 0; attempt < 20; attempt++) {
        run_cycle(&live);
        run_cycle(&text);
        if (tcp_state(&live, "LISTEN") == tcp_state(&text, "LISTEN"))
            break;
        usleep(50 * 1000);
    }
    assert_true(tcp_state(&live, "LISTEN") == tcp_state(&text, "LISTEN"));
    if (netlink) /* and no dump of it failed over to text */
        assert_string_equal(netstat_collector_source(live.collector), "netlink");
    struct run *runs[] = {&live, &text};
    for (size_t i = 0; i < 2; i++) {
        const Vigil__Signal *l = find(runs[i], "net.listen", "port", port_text, "proto", "tcp");
        assert_non_null(l);
        assert_string_equal(label(l, "address"), "127.0.0.1");
        assert_string_equal(label(l, "pid"), pid_text);
        assert_string_equal(label(l, "process"), "test_netstat");
        l = find(runs[i], "net.listen", "port", udp_text, "proto", "udp");
        assert_non_null(l);
        assert_string_equal(label(l, "pid"), pid_text);
        assert_non_null(find(runs[i], "net.sockets", "proto", "udp", NULL, NULL));
        assert_non_null(find(runs[i], "net.sockets", "proto", "unix", NULL, NULL));
    }
    run_close(&live);
    run_close(&text);
    close(fd);
    close(udp);
    nftw(link_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The whole TCP table is walked when the kernel's counters move, not every cycle: a quiet
 * cycle reuses the last walk's counts, a burst of connections forces a walk at once, and a
 * new listener is reported either way. */
static void test_walk_only_on_change(void **state)
{
    (void)state;
    sockdiag_t *probe = sockdiag_new();
    if (!probe) {
        print_message("netlink refused here: the text path reads everything every cycle\n");
        return;
    }
    sockdiag_destroy(&probe);
    struct run live;
    uint64_t walks, skips;
    run_open(&live, NULL);
    run_cycle(&live); /* the first cycle always walks */
    netstat_collector_walks(live.collector, &walks, &skips);
    assert_int_equal(walks, 1);
    /* Back to back, nothing changes: some cycle reuses the walk. Tests running beside this one
     * open and close sockets, so not every cycle and not necessarily among the first ten: up to
     * 500 cycles (a few milliseconds each) until one does. */
    skips = 0;
    for (int i = 0; i < 500 && skips == 0; i++) {
        run_cycle(&live);
        netstat_collector_walks(live.collector, &walks, &skips);
    }
    assert_true(skips >= 1);
    double established = tcp_state(&live, "ESTABLISHED");

    /* 40 loopback connections (80 ESTABLISHED sockets): beyond the noise, walked at once. */
    uint16_t port;
    int lfd = listen_on(AF_INET, SOCK_STREAM, &port);
    assert_true(lfd >= 0);
    assert_int_equal(listen(lfd, 64), 0);
    int clients[40], servers[40];
    struct sockaddr_in to = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int i = 0; i < 40; i++) {
        clients[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(connect(clients[i], (struct sockaddr *)&to, sizeof(to)), 0);
        servers[i] = accept(lfd, NULL, NULL);
        assert_true(servers[i] >= 0);
    }
    uint64_t walks_before = walks;
    run_cycle(&live);
    netstat_collector_walks(live.collector, &walks, &skips);
    assert_int_equal(walks, walks_before + 1);
    assert_true(tcp_state(&live, "ESTABLISHED") >= established + 80);
    char port_text[8];
    snprintf(port_text, sizeof(port_text), "%u", (unsigned)port);
    assert_non_null(find(&live, "net.listen.new", "port", port_text, "proto", "tcp"));

    /* One more listener moves no counter beyond the noise, yet it is reported at once. */
    uint16_t port2;
    int lfd2 = listen_on(AF_INET, SOCK_STREAM, &port2);
    assert_true(lfd2 >= 0);
    run_cycle(&live);
    snprintf(port_text, sizeof(port_text), "%u", (unsigned)port2);
    assert_non_null(find(&live, "net.listen.new", "port", port_text, "proto", "tcp"));
    assert_non_null(find(&live, "net.sockets", "state", "ESTABLISHED", "proto", "tcp"));

    for (int i = 0; i < 40; i++) {
        close(clients[i]);
        close(servers[i]);
    }
    close(lfd);
    close(lfd2);
    run_close(&live);
}

/* This machine's table: a listener of ours, with this process as its owner. */
static void test_table_live(void **state)
{
    (void)state;
    uint16_t port;
    int fd = listen_on(AF_INET, SOCK_STREAM, &port);
    assert_true(fd >= 0);
    struct sink s = {0};
    char err[256], local[32], owner[64];
    assert_int_equal(write_table(&s, NULL, 64 << 20, err, sizeof(err)), 0);
    snprintf(local, sizeof(local), " 127.0.0.1:%u ", (unsigned)port);
    snprintf(owner, sizeof(owner), "users:((\"test_netstat\",pid=%d,fd=%d))", (int)getpid(), fd);
    const char *l = only_line(&s, local, NULL, NULL);
    assert_non_null(strstr(l, " LISTEN "));
    assert_true(ends_with(l, owner));
    free(s.data);
    close(fd);
}

/* The machine's own /proc: whatever is there, a cycle works and reports sockets. */
static void test_real_proc(void **state)
{
    (void)state;
    struct run r;
    run_open(&r, NULL);
    run_cycle(&r);
    assert_non_null(find(&r, "net.sockets", "proto", "tcp", "state", "ESTABLISHED"));
    assert_non_null(find(&r, "net.sockets", "proto", "unix", NULL, NULL));
    run_cycle(&r);
    assert_non_null(find(&r, "net.sockets", NULL, NULL, NULL, NULL));
    run_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_counts_owners_and_top_talkers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_listener_reported_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_cycle_keeps_baseline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owner_change_is_noticed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_malformed_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_table_is_streamed, setup, teardown),
        cmocka_unit_test(test_real_proc),
        cmocka_unit_test_setup_teardown(test_table_shows_sockets_with_owners, setup, teardown),
        cmocka_unit_test_setup_teardown(test_table_cap_and_writer_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owner_in_pod, setup, teardown),
        cmocka_unit_test(test_table_live),
        cmocka_unit_test(test_netlink_agrees_with_text),
        cmocka_unit_test(test_collector_sources_agree),
        cmocka_unit_test(test_walk_only_on_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
