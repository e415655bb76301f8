/*
 * Privilege separation, the command messages: PRIVSEP_COMMAND (a capsule, agent -> executor)
 * and PRIVSEP_REPORT (a CommandReport, executor -> agent), beside the fixed-size PING/PONG
 * (test_privsep.c). Both sides stay strict: a length that is not the message's, a reserved
 * field set, a type sent the wrong way, an unsolicited PONG end the channel.
 *
 * The real executor (VIGIL_EXEC_PATH) plays itself; misbehaving executors are small Python
 * programs this test writes, started by privsep_start like the real one.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "privsep.h"
#include "vigil.pb-c.h"

static const char *exec_path;
static char fake_dir[] = "/tmp/vigil-privsep-cmd.XXXXXX";

/* What the report handler saw. */
struct seen {
    int count;
    uint8_t last[PRIVSEP_PAYLOAD_MAX];
    size_t last_len;
};

static void on_report(void *userdata, const uint8_t *data, size_t len)
{
    struct seen *s = userdata;
    s->count++;
    memcpy(s->last, data, len);
    s->last_len = len;
}

/* Waits up to timeout_ms for the executor to send something, then lets privsep read it. */
static int handle_within(privsep_t *ps, int timeout_ms)
{
    struct pollfd pfd = {.fd = privsep_fd(ps), .events = POLLIN};
    if (poll(&pfd, 1, timeout_ms) != 1)
        return -ETIMEDOUT;
    return privsep_handle(ps);
}

/* A fake executor in Python: answers the start-up PING, then plays mode. */
static const char fake_program[] = "#!/usr/bin/python3\n"
                                   "import socket, struct, sys\n"
                                   "MODE = sys.argv[0].rsplit('/', 1)[1]\n"
                                   "MAGIC = 0x56474558\n"
                                   "s = socket.socket(fileno=3)\n"
                                   "def pong():\n"
                                   "    m = s.recv(70000)\n"
                                   "    magic, typ, nonce = struct.unpack('=IIQ', m)\n"
                                   "    s.send(struct.pack('=IIQ', MAGIC, 2, nonce))\n"
                                   "    return nonce\n"
                                   "pong()\n"
                                   "if MODE == 'report-bad-len':\n"
                                   "    s.send(struct.pack('=IIII', MAGIC, 4, 10, 0) + b'x' * 5)\n"
                                   "elif MODE == 'report-reserved':\n"
                                   "    s.send(struct.pack('=IIII', MAGIC, 4, 3, 1) + b'abc')\n"
                                   "elif MODE == 'report-empty':\n"
                                   "    s.send(struct.pack('=IIII', MAGIC, 4, 0, 0))\n"
                                   "elif MODE == 'unsolicited-pong':\n"
                                   "    s.send(struct.pack('=IIQ', MAGIC, 2, 7))\n"
                                   "elif MODE == 'command-to-agent':\n"
                                   "    s.send(struct.pack('=IIII', MAGIC, 3, 3, 0) + b'abc')\n"
                                   "elif MODE == 'report-during-ping':\n"
                                   "    m = s.recv(70000)\n"
                                   "    magic, typ, nonce = struct.unpack('=IIQ', m)\n"
                                   "    s.send(struct.pack('=IIII', MAGIC, 4, 3, 0) + b'abc')\n"
                                   "    s.send(struct.pack('=IIQ', MAGIC, 2, nonce))\n"
                                   "while s.recv(70000):\n"
                                   "    pass\n";

static const char *fake(const char *mode)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", fake_dir, mode);
    if (access(path, X_OK) != 0) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(fake_program, f);
        fclose(f);
        chmod(path, 0755);
    }
    return path;
}

static privsep_t *start(const char *path)
{
    char err[512];
    privsep_t *ps = privsep_start(path, NULL, true, err, sizeof(err));
    if (!ps)
        print_error("privsep_start %s: %s\n", path, err);
    assert_non_null(ps);
    return ps;
}

/* ---- the real executor ---- */

/* A capsule with a request id and a nonce but nothing that would verify. */
static size_t pack_capsule(uint8_t *buf, size_t size)
{
    static uint8_t nonce[16] = {1, 2, 3};
    Vigil__CommandRequest req = VIGIL__COMMAND_REQUEST__INIT;
    Vigil__CommandCapsule c = VIGIL__COMMAND_CAPSULE__INIT;
    req.request_id = "r-1";
    req.action = "canary";
    req.node = "node-a";
    req.requested_by = "vigil";
    c.request = &req;
    c.nonce.data = nonce;
    c.nonce.len = sizeof(nonce);
    size_t len = vigil__command_capsule__get_packed_size(&c);
    assert_true(len <= size);
    vigil__command_capsule__pack(&c, buf);
    return len;
}

static void test_command_refused_without_configuration(void **state)
{
    (void)state;
    struct seen seen = {0};
    uint8_t capsule[1024];
    privsep_t *ps = start(exec_path);
    privsep_set_report_handler(ps, on_report, &seen);

    assert_int_equal(privsep_send_command(ps, capsule, pack_capsule(capsule, sizeof(capsule))), 0);
    assert_int_equal(handle_within(ps, 2000), 0);
    assert_int_equal(seen.count, 1);
    Vigil__CommandReport *r = vigil__command_report__unpack(NULL, seen.last_len, seen.last);
    assert_non_null(r);
    assert_string_equal(r->request_id, "r-1");
    assert_int_equal(r->step, VIGIL__COMMAND_STEP__COMMAND_STEP_REFUSED);
    assert_non_null(strstr(r->reason, "remediation is disabled"));
    vigil__command_report__free_unpacked(r, NULL);

    /* Garbage is not a capsule: refused without a name, so not reported; the channel lives. */
    assert_int_equal(privsep_send_command(ps, "garbage", 7), 0);
    assert_int_equal(privsep_ping(ps, 1000), 0);
    assert_int_equal(seen.count, 1);
    privsep_stop(&ps);
}

static void test_send_command_bounds(void **state)
{
    (void)state;
    static uint8_t big[PRIVSEP_PAYLOAD_MAX + 1];
    privsep_t *ps = start(exec_path);
    assert_int_equal(privsep_send_command(ps, big, 0), -EMSGSIZE);
    assert_int_equal(privsep_send_command(ps, big, sizeof(big)), -EMSGSIZE);
    assert_int_equal(privsep_ping(ps, 1000), 0); /* nothing was sent: still in step */
    privsep_stop(&ps);
}

/* Starts the executor by hand on a socketpair, sends one raw message and returns its exit
 * status. */
static int executor_exit_after(const void *msg, size_t len)
{
    int pair[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, STDERR_FILENO);
        dup2(pair[1], PRIVSEP_EXEC_FD);
        char *const argv[] = {"vigil-agent-exec", NULL};
        char *const envp[] = {"PATH=/usr/bin:/bin", NULL};
        execve(exec_path, argv, envp);
        _exit(127);
    }
    close(pair[1]);
    assert_int_equal(send(pair[0], msg, len, MSG_NOSIGNAL), (ssize_t)len);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    close(pair[0]);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void test_executor_rejects_bad_commands(void **state)
{
    (void)state;
    uint8_t msg[64] = {0};
    struct privsep_hdr hdr = {PRIVSEP_MAGIC, PRIVSEP_COMMAND, 10, 0};

    /* A length that is not the message's. */
    memcpy(msg, &hdr, sizeof(hdr));
    assert_int_equal(executor_exit_after(msg, sizeof(hdr) + 5), 3);
    /* The reserved field set. */
    hdr = (struct privsep_hdr){PRIVSEP_MAGIC, PRIVSEP_COMMAND, 5, 1};
    memcpy(msg, &hdr, sizeof(hdr));
    assert_int_equal(executor_exit_after(msg, sizeof(hdr) + 5), 3);
    /* Empty. */
    hdr = (struct privsep_hdr){PRIVSEP_MAGIC, PRIVSEP_COMMAND, 0, 0};
    memcpy(msg, &hdr, sizeof(hdr));
    assert_int_equal(executor_exit_after(msg, sizeof(hdr)), 3);
    /* A REPORT is the executor's to send, not to receive. */
    hdr = (struct privsep_hdr){PRIVSEP_MAGIC, PRIVSEP_REPORT, 5, 0};
    memcpy(msg, &hdr, sizeof(hdr));
    assert_int_equal(executor_exit_after(msg, sizeof(hdr) + 5), 3);
    /* A PING of the COMMAND header's size plus payload. */
    struct privsep_msg ping = {PRIVSEP_MAGIC, PRIVSEP_PING, 1};
    memcpy(msg, &ping, sizeof(ping));
    assert_int_equal(executor_exit_after(msg, sizeof(ping) + 4), 3);
}

/* ---- misbehaving executors ---- */

static void test_agent_refuses_bad_reports(void **state)
{
    (void)state;
    static const char *const modes[] = {"report-bad-len", "report-reserved", "report-empty",
                                        "unsolicited-pong", "command-to-agent"};
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        struct seen seen = {0};
        privsep_t *ps = start(fake(modes[i]));
        privsep_set_report_handler(ps, on_report, &seen);
        int r = handle_within(ps, 2000);
        if (r != -EPROTO)
            print_error("mode %s: %d\n", modes[i], r);
        assert_int_equal(r, -EPROTO);
        assert_int_equal(privsep_fd(ps), -1); /* the channel is closed for good */
        assert_int_equal(privsep_ping(ps, 100), -EPIPE);
        assert_int_equal(seen.count, 0);
        privsep_stop(&ps);
    }
}

static void test_report_while_waiting_for_pong(void **state)
{
    (void)state;
    struct seen seen = {0};
    privsep_t *ps = start(fake("report-during-ping"));
    privsep_set_report_handler(ps, on_report, &seen);
    assert_int_equal(privsep_ping(ps, 2000), 0);
    assert_int_equal(seen.count, 1);
    assert_int_equal(seen.last_len, 3);
    assert_memory_equal(seen.last, "abc", 3);
    privsep_stop(&ps);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(fake_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    static const char *const modes[] = {"report-bad-len",   "report-reserved",
                                        "report-empty",     "unsolicited-pong",
                                        "command-to-agent", "report-during-ping"};
    char path[512];
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", fake_dir, modes[i]);
        unlink(path);
    }
    rmdir(fake_dir);
    return 0;
}

int main(int argc, char **argv)
{
    exec_path = argc > 1 ? argv[1] : getenv("VIGIL_EXEC_PATH");
    if (!exec_path) {
        fprintf(stderr, "usage: test_privsep_commands PATH-TO-vigil-agent-exec\n");
        return 2;
    }
    if (access("/usr/bin/python3", X_OK) != 0) {
        fprintf(stderr, "no /usr/bin/python3 for the fake executors: skipped\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_command_refused_without_configuration),
        cmocka_unit_test(test_send_command_bounds),
        cmocka_unit_test(test_executor_rejects_bad_commands),
        cmocka_unit_test(test_agent_refuses_bad_reports),
        cmocka_unit_test(test_report_while_waiting_for_pong),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
