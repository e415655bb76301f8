/*
 * executor-driver: plays the coordinator and the agent's network side against a real
 * vigil-agent-exec, for tests/integration/executor_commands.sh.
 *
 *   executor-driver keys DIR
 *       Ed25519 signing keys DIR/{coordinator,alice,bob,eve}.key and DIR/signers.yaml naming the
 *       first three (coordinator, alice responder, bob admin); eve is in no signer file.
 *   executor-driver capsule DIR OUT [-n NODE] [-a ACTION] [-A KEY=VALUE]... [-p APPROVER]...
 *                                   [-i ID] [-r REQUESTER] [-e] [-d] [-t]
 *       A CommandCapsule signed with DIR/coordinator.key, packed into OUT. -p: an approval by
 *       DIR/APPROVER.key; -e: expired a minute ago; -d: dry run; -t: tampered after signing (the
 *       first argument's value gets an "x").
 *   executor-driver run EXEC CONFIG CAPSULE...
 *       Starts EXEC as vigil-agent does (fd 3 a SOCK_SEQPACKET socketpair, CONFIG its argument),
 *       sends each capsule as a PRIVSEP_COMMAND, and prints every report as one line
 *         REPORT id=ID step=STEP exit=N duration_ms=N sha256=HEX truncated=0|1 reason="..."
 *       until each command reached done or refused. It pings the executor every 200 ms meanwhile
 *       and fails when a PONG takes more than a second (the executor must answer while commands
 *       run). Exit 0, or 1 with the reason on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "capsule.h"
#include "digest.h"
#include "privsep.h"
#include "sign.h"
#include "timeutil.h"
#include "vigil.pb-c.h"
#include "wire.h"

#define MAX_ARGS 16
#define MAX_APPROVERS 8
#define MAX_CAPSULES 32
#define RUN_TIMEOUT_MS 30000
#define PING_EVERY_MS 200
#define PONG_WITHIN_MS 1000

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("executor-driver: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void load_key(const char *dir, const char *name, struct vg_signing_key *ret)
{
    char path[4096], err[512];
    snprintf(path, sizeof(path), "%s/%s.key", dir, name);
    if (vg_signing_key_load(path, ret, err, sizeof(err)) < 0)
        fail("%s", err);
}

static int cmd_keys(const char *dir)
{
    static const char *const names[] = {"coordinator", "alice", "bob", "eve"};
    static const char *const roles[] = {"coordinator", "responder", "admin", NULL};
    char path[4096], err[512];
    snprintf(path, sizeof(path), "%s/signers.yaml", dir);
    FILE *out = fopen(path, "w");
    if (!out)
        fail("%s: %s", path, strerror(errno));
    fprintf(out, "signers:\n");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        struct vg_signing_key k;
        char pub[VG_SIGN_PUBLIC_B64_LEN + 1];
        if (vg_signing_key_generate(&k) < 0)
            fail("cannot generate a key");
        snprintf(path, sizeof(path), "%s/%s.key", dir, names[i]);
        if (vg_signing_key_save(path, &k, err, sizeof(err)) < 0)
            fail("%s", err);
        vg_sign_public_format(k.public_key, pub);
        if (roles[i])
            fprintf(out, "  - {name: %s, role: %s, public_key: \"%s\"}\n", names[i], roles[i], pub);
        vg_signing_key_wipe(&k);
    }
    fclose(out);
    return 0;
}

static int cmd_capsule(const char *dir, const char *out_path, int argc, char **argv)
{
    const char *node = "node-a", *action = "canary", *id = NULL, *requester = "vigil";
    const char *approvers[MAX_APPROVERS];
    size_t napprovers = 0;
    Vigil__CommandArg args[MAX_ARGS];
    Vigil__CommandArg *arg_ptrs[MAX_ARGS];
    size_t nargs = 0;
    bool expired = false, dry_run = false, tamper = false;
    char idbuf[64];
    int opt;

    optind = 1;
    while ((opt = getopt(argc, argv, "n:a:A:p:i:r:edt")) != -1) {
        switch (opt) {
        case 'n':
            node = optarg;
            break;
        case 'a':
            action = optarg;
            break;
        case 'A': {
            char *eq = strchr(optarg, '=');
            if (!eq || nargs == MAX_ARGS)
                fail("-A KEY=VALUE");
            *eq = '\0';
            vigil__command_arg__init(&args[nargs]);
            args[nargs].key = optarg;
            args[nargs].value = eq + 1;
            arg_ptrs[nargs] = &args[nargs];
            nargs++;
            break;
        }
        case 'p':
            if (napprovers == MAX_APPROVERS)
                fail("too many approvers");
            approvers[napprovers++] = optarg;
            break;
        case 'i':
            id = optarg;
            break;
        case 'r':
            requester = optarg;
            break;
        case 'e':
            expired = true;
            break;
        case 'd':
            dry_run = true;
            break;
        case 't':
            tamper = true;
            break;
        default:
            fail("unknown option");
        }
    }
    if (!id) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(idbuf, sizeof(idbuf), "r-%ld-%ld", (long)ts.tv_sec, ts.tv_nsec);
        id = idbuf;
    }
    int64_t now = vg_wall_ms();
    Vigil__CommandRequest req = VIGIL__COMMAND_REQUEST__INIT;
    req.request_id = (char *)id;
    req.action = (char *)action;
    req.n_args = nargs;
    req.args = arg_ptrs;
    req.node = (char *)node;
    req.requested_by = (char *)requester;
    req.created_at_ms = now - 1000;
    req.dry_run = dry_run;

    unsigned char req_hash[VG_CAPSULE_HASH_LEN];
    if (vg_command_request_hash(&req, req_hash) < 0)
        fail("cannot hash the request");
    Vigil__Approval approvals[MAX_APPROVERS];
    Vigil__Approval *approval_ptrs[MAX_APPROVERS];
    unsigned char sigs[MAX_APPROVERS][VG_SIGNATURE_LEN];
    char pubs[MAX_APPROVERS][VG_SIGN_PUBLIC_B64_LEN + 1];
    for (size_t i = 0; i < napprovers; i++) {
        struct vg_signing_key k;
        load_key(dir, approvers[i], &k);
        vg_approval_sign(&k, req_hash, sigs[i]);
        vg_sign_public_format(k.public_key, pubs[i]);
        vg_signing_key_wipe(&k);
        vigil__approval__init(&approvals[i]);
        approvals[i].operator_ = (char *)approvers[i];
        approvals[i].signing_key = pubs[i];
        approvals[i].signature.data = sigs[i];
        approvals[i].signature.len = VG_SIGNATURE_LEN;
        approvals[i].at_ms = now;
        approval_ptrs[i] = &approvals[i];
    }

    Vigil__CommandCapsule c = VIGIL__COMMAND_CAPSULE__INIT;
    c.request = &req;
    c.n_approvals = napprovers;
    c.approvals = approval_ptrs;
    c.issued_at_ms = expired ? now - 10 * 60 * 1000 : now;
    c.not_after_ms = expired ? now - 60 * 1000 : now + 5 * 60 * 1000;
    struct vg_signing_key coord;
    struct vg_capsule_seal seal;
    load_key(dir, "coordinator", &coord);
    if (vg_capsule_sign(&c, &coord, &seal) < 0)
        fail("cannot sign the capsule");
    vg_signing_key_wipe(&coord);

    char tampered[1100];
    if (tamper) {
        if (nargs == 0)
            fail("-t needs an argument to tamper with");
        snprintf(tampered, sizeof(tampered), "%sx", args[0].value);
        args[0].value = tampered;
    }
    size_t len = vigil__command_capsule__get_packed_size(&c);
    uint8_t *buf = malloc(len);
    if (!buf)
        fail("out of memory");
    vigil__command_capsule__pack(&c, buf);
    FILE *out = fopen(out_path, "wb");
    if (!out || fwrite(buf, 1, len, out) != len || fclose(out) != 0)
        fail("%s: cannot write", out_path);
    free(buf);
    printf("%s\n", id);
    return 0;
}

/* ---- run ---- */

static int sock = -1;
static pid_t exec_pid = -1;

static void start_executor(const char *exec_path, const char *config)
{
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
        fail("socketpair: %s", strerror(errno));
    exec_pid = fork();
    if (exec_pid < 0)
        fail("fork: %s", strerror(errno));
    if (exec_pid == 0) {
        if (dup2(pair[1], PRIVSEP_EXEC_FD) < 0)
            _exit(126);
        char *const args[] = {"vigil-agent-exec", (char *)config, NULL};
        char *const env[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
        execve(exec_path, args, env);
        _exit(127);
    }
    close(pair[1]);
    sock = pair[0];
}

static void read_file(const char *path, uint8_t **ret, size_t *ret_len)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        fail("%s: %s", path, strerror(errno));
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    ssize_t n = buf ? read(fd, buf, (size_t)st.st_size) : -1;
    close(fd);
    if (n != st.st_size)
        fail("%s: short read", path);
    *ret = buf;
    *ret_len = (size_t)n;
}

static const char *step_name(Vigil__CommandStep s)
{
    const char *name = vg_command_step_name(s);
    return name ? name : "unknown";
}

static int cmd_run(const char *exec_path, const char *config, int ncapsules, char **paths)
{
    static uint8_t buf[sizeof(struct privsep_hdr) + PRIVSEP_PAYLOAD_MAX + 1];
    int pending = ncapsules;

    if (ncapsules > MAX_CAPSULES)
        fail("at most %d capsules", MAX_CAPSULES);
    start_executor(exec_path, config);
    for (int i = 0; i < ncapsules; i++) {
        uint8_t *data;
        size_t len;
        read_file(paths[i], &data, &len);
        struct privsep_hdr hdr = {PRIVSEP_MAGIC, PRIVSEP_COMMAND, (uint32_t)len, 0};
        memcpy(buf, &hdr, sizeof(hdr));
        memcpy(buf + sizeof(hdr), data, len);
        free(data);
        if (send(sock, buf, sizeof(hdr) + len, MSG_NOSIGNAL) != (ssize_t)(sizeof(hdr) + len))
            fail("send: %s", strerror(errno));
    }

    int64_t deadline = vg_mono_ms() + RUN_TIMEOUT_MS;
    int64_t next_ping = vg_mono_ms();
    int64_t ping_sent = 0;
    uint64_t ping_nonce = 0;
    while (pending > 0) {
        int64_t now = vg_mono_ms();
        if (now >= deadline)
            fail("%d command(s) did not finish within %d ms", pending, RUN_TIMEOUT_MS);
        if (ping_sent && now - ping_sent > PONG_WITHIN_MS)
            fail("the executor did not answer a PING within %d ms", PONG_WITHIN_MS);
        if (!ping_sent && now >= next_ping) {
            struct privsep_msg ping = {PRIVSEP_MAGIC, PRIVSEP_PING, ++ping_nonce};
            if (send(sock, &ping, sizeof(ping), MSG_NOSIGNAL) != (ssize_t)sizeof(ping))
                fail("send PING: %s", strerror(errno));
            ping_sent = now;
        }
        struct pollfd pfd = {.fd = sock, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        ssize_t n = recv(sock, buf, sizeof(buf), 0);
        if (n <= 0)
            fail("the executor closed the channel (%s)", n < 0 ? strerror(errno) : "EOF");
        struct privsep_hdr hdr;
        if ((size_t)n < sizeof(hdr))
            fail("short message of %zd bytes", n);
        memcpy(&hdr, buf, sizeof(hdr));
        if (hdr.magic != PRIVSEP_MAGIC)
            fail("bad magic");
        if (hdr.type == PRIVSEP_PONG) {
            struct privsep_msg pong;
            if ((size_t)n != sizeof(pong))
                fail("PONG of %zd bytes", n);
            memcpy(&pong, buf, sizeof(pong));
            if (pong.nonce != ping_nonce || !ping_sent)
                fail("unexpected PONG");
            ping_sent = 0;
            next_ping = vg_mono_ms() + PING_EVERY_MS;
            continue;
        }
        if ((hdr.type != PRIVSEP_REPORT && hdr.type != PRIVSEP_OUTPUT) ||
            (size_t)n != sizeof(hdr) + hdr.len)
            fail("unexpected message type %u of %zd bytes", hdr.type, n);
        if (hdr.type == PRIVSEP_OUTPUT) {
            /* The kept output before its DONE: shown as its size and the SHA-256 of the chunk. */
            Vigil__CommandOutput *o =
                vigil__command_output__unpack(NULL, hdr.len, buf + sizeof(hdr));
            if (!o)
                fail("an OUTPUT that is not a CommandOutput");
            unsigned char sha[VG_SHA256_LEN];
            char hex[VG_SHA256_HEX_LEN + 1];
            vg_sha256(o->data.data, o->data.len, sha);
            vg_hex(sha, VG_SHA256_LEN, hex);
            printf("OUTPUT id=%s offset=%llu bytes=%zu last=%d sha256=%s\n", o->request_id,
                   (unsigned long long)o->offset, o->data.len, o->last, hex);
            vigil__command_output__free_unpacked(o, NULL);
            continue;
        }
        Vigil__CommandReport *r = vigil__command_report__unpack(NULL, hdr.len, buf + sizeof(hdr));
        if (!r)
            fail("a REPORT that is not a CommandReport");
        char hex[VG_SHA256_HEX_LEN + 1] = "-";
        if (r->output_sha256.len == VG_SHA256_LEN)
            vg_hex(r->output_sha256.data, VG_SHA256_LEN, hex);
        printf("REPORT id=%s step=%s exit=%d duration_ms=%llu sha256=%s truncated=%d "
               "reason=\"%s\"\n",
               r->request_id, step_name(r->step), r->exit_status,
               (unsigned long long)r->duration_ms, hex, r->output_truncated, r->reason);
        fflush(stdout);
        if (r->step == VIGIL__COMMAND_STEP__COMMAND_STEP_DONE ||
            r->step == VIGIL__COMMAND_STEP__COMMAND_STEP_REFUSED)
            pending--;
        vigil__command_report__free_unpacked(r, NULL);
    }
    close(sock);
    int status;
    while (waitpid(exec_pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail("the executor ended with status %#x", status);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "keys") == 0)
        return cmd_keys(argv[2]);
    if (argc >= 4 && strcmp(argv[1], "capsule") == 0)
        return cmd_capsule(argv[2], argv[3], argc - 3, argv + 3);
    if (argc >= 4 && strcmp(argv[1], "run") == 0)
        return cmd_run(argv[2], argv[3], argc - 4, argv + 4);
    fprintf(stderr, "usage: executor-driver keys DIR | capsule DIR OUT [options] | run EXEC "
                    "CONFIG CAPSULE...\n");
    return 64;
}
