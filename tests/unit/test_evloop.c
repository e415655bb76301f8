/* The event loop: readable fds and sockets call their handlers in registration order, timers
 * fire at their interval, a stop ends the turn with its code, removed fds are not called. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <zmq.h>

#include "evloop.h"
#include "timeutil.h"

/* What the handlers saw: which ones ran, in which order. */
struct journal {
    char order[32];
    size_t n;
};

struct probe {
    struct journal *journal;
    char name;
    int fd; /* drained when readable, so level-triggered polls do not repeat */
    int calls;
    int result;       /* what the handler returns */
    int stop_code;    /* >= 0: the handler stops the loop with it */
    int remove_fd;    /* >= 0: the handler removes this fd from the loop */
    int64_t last_run; /* mono ms */
};

static int on_event(vg_loop_t *loop, void *userdata)
{
    struct probe *p = userdata;
    char buf[64];
    p->calls++;
    p->last_run = vg_mono_ms();
    if (p->journal && p->journal->n < sizeof(p->journal->order) - 1)
        p->journal->order[p->journal->n++] = p->name;
    if (p->fd >= 0)
        assert_true(read(p->fd, buf, sizeof(buf)) > 0);
    if (p->remove_fd >= 0)
        assert_int_equal(vg_loop_remove_fd(loop, p->remove_fd), 0);
    if (p->stop_code >= 0)
        vg_loop_stop(loop, p->stop_code);
    return p->result;
}

static struct probe probe(struct journal *j, char name, int fd)
{
    return (struct probe){.journal = j, .name = name, .fd = fd, .stop_code = -1, .remove_fd = -1};
}

static void make_pipe(int fds[2])
{
    assert_int_equal(pipe(fds), 0);
}

static void close_pipe(int fds[2])
{
    close(fds[0]);
    close(fds[1]);
}

static void test_fd_handler_called_when_readable(void **unused)
{
    (void)unused;
    int fds[2];
    make_pipe(fds);
    vg_loop_t *loop = vg_loop_new();
    struct probe p = probe(NULL, 'a', fds[0]);
    assert_int_equal(vg_loop_add_fd(loop, fds[0], on_event, &p), 0);

    /* Nothing written: not called, and a capped wait returns. */
    int64_t t0 = vg_mono_ms();
    assert_int_equal(vg_loop_run_once(loop, 30), 0);
    assert_true(vg_mono_ms() - t0 >= 25);
    assert_int_equal(p.calls, 0);

    /* Written: called in the next turn, without waiting out the cap. */
    assert_int_equal(write(fds[1], "x", 1), 1);
    t0 = vg_mono_ms();
    assert_int_equal(vg_loop_run_once(loop, 5000), 0);
    assert_true(vg_mono_ms() - t0 < 1000);
    assert_int_equal(p.calls, 1);

    assert_int_equal(vg_loop_add_fd(loop, -1, on_event, &p), -EINVAL);
    vg_loop_destroy(&loop);
    assert_null(loop);
    vg_loop_destroy(&loop); /* accepts NULL */
    close_pipe(fds);
}

static void test_timer_fires_at_interval(void **unused)
{
    (void)unused;
    vg_loop_t *loop = vg_loop_new();
    struct probe p = probe(NULL, 't', -1);
    int id = vg_loop_add_timer(loop, 50, on_event, &p);
    assert_true(id > 0);

    /* Not due before its first interval. */
    assert_int_equal(vg_loop_run_once(loop, 0), 0);
    assert_int_equal(p.calls, 0);

    /* With no cap, each turn waits for the timer: three runs take three intervals. */
    int64_t t0 = vg_mono_ms();
    while (p.calls < 3)
        assert_int_equal(vg_loop_run_once(loop, -1), 0);
    int64_t elapsed = vg_mono_ms() - t0;
    assert_true(elapsed >= 145);
    assert_true(elapsed < 1000);

    /* Due now: runs in the next turn without waiting; then its interval again. */
    assert_int_equal(vg_loop_timer_due_now(loop, id), 0);
    t0 = vg_mono_ms();
    assert_int_equal(vg_loop_run_once(loop, 5000), 0);
    assert_int_equal(p.calls, 4);
    assert_true(vg_mono_ms() - t0 < 40);
    assert_int_equal(vg_loop_run_once(loop, 10), 0);
    assert_int_equal(p.calls, 4);

    /* A longer interval: the next run is that far from now. */
    assert_int_equal(vg_loop_timer_set_interval(loop, id, 120), 0);
    t0 = vg_mono_ms();
    while (p.calls < 5)
        assert_int_equal(vg_loop_run_once(loop, -1), 0);
    assert_true(vg_mono_ms() - t0 >= 115);

    assert_int_equal(vg_loop_remove_timer(loop, id), 0);
    assert_int_equal(vg_loop_remove_timer(loop, id), -ENOENT);
    assert_int_equal(vg_loop_timer_due_now(loop, id), -ENOENT);
    assert_int_equal(vg_loop_add_timer(loop, -1, on_event, &p), -EINVAL);
    vg_loop_destroy(&loop);
}

static void test_interval_zero_runs_only_when_due(void **unused)
{
    (void)unused;
    vg_loop_t *loop = vg_loop_new();
    struct probe p = probe(NULL, 'd', -1);
    int id = vg_loop_add_timer(loop, 0, on_event, &p);
    assert_true(id > 0);

    /* Never due on its own: with nothing else registered a capped turn just waits. */
    assert_int_equal(vg_loop_run_once(loop, 20), 0);
    assert_int_equal(p.calls, 0);
    assert_int_equal(vg_loop_timer_due_now(loop, id), 0);
    assert_int_equal(vg_loop_run_once(loop, 5000), 0);
    assert_int_equal(p.calls, 1);
    assert_int_equal(vg_loop_run_once(loop, 20), 0);
    assert_int_equal(p.calls, 1);
    vg_loop_destroy(&loop);
}

static void test_stop_returns_code(void **unused)
{
    (void)unused;
    struct journal j = {0};
    vg_loop_t *loop = vg_loop_new();
    struct probe stopper = probe(&j, 's', -1);
    struct probe later = probe(&j, 'l', -1);
    stopper.stop_code = 75;
    int first = vg_loop_add_timer(loop, 10, on_event, &stopper);
    int second = vg_loop_add_timer(loop, 10, on_event, &later);
    assert_true(first > 0 && second > first);
    assert_int_equal(vg_loop_timer_due_now(loop, first), 0);
    assert_int_equal(vg_loop_timer_due_now(loop, second), 0);

    /* The stop ends the turn: the second timer, also due, is not called. */
    assert_int_equal(vg_loop_run(loop), 75);
    assert_string_equal(j.order, "s");
    assert_int_equal(later.calls, 0);
    assert_int_equal(vg_loop_stop_code(loop), 75);

    /* A handler returning -1 stops the loop with -1. */
    stopper.stop_code = -1;
    stopper.result = -1;
    assert_int_equal(vg_loop_timer_due_now(loop, first), 0);
    assert_int_equal(vg_loop_run(loop), -1);

    /* run_once reports a stop with 1; a stop from outside a handler ends the next turn. */
    stopper.result = 0;
    stopper.stop_code = 0;
    assert_int_equal(vg_loop_timer_due_now(loop, first), 0);
    assert_int_equal(vg_loop_run_once(loop, -1), 1);
    assert_int_equal(vg_loop_stop_code(loop), 0);
    int calls = stopper.calls;
    vg_loop_stop(loop, 3);
    assert_int_equal(vg_loop_run(loop), 3);
    assert_int_equal(stopper.calls, calls);
    vg_loop_destroy(&loop);
}

static void test_handlers_in_registration_order(void **unused)
{
    (void)unused;
    struct journal j = {0};
    int a[2], b[2], c[2];
    make_pipe(a);
    make_pipe(b);
    make_pipe(c);
    void *zctx = zmq_ctx_new();
    void *server = zmq_socket(zctx, ZMQ_PAIR);
    void *client = zmq_socket(zctx, ZMQ_PAIR);
    assert_int_equal(zmq_bind(server, "inproc://evloop-order"), 0);
    assert_int_equal(zmq_connect(client, "inproc://evloop-order"), 0);

    vg_loop_t *loop = vg_loop_new();
    /* Neither fd numbers nor kinds decide: c's fd was opened last, the socket is added first
     * (as the coordinator's ZAP socket is), a timer due at once comes after every fd. */
    struct probe pc = probe(&j, 'c', c[0]), pa = probe(&j, 'a', a[0]), pb = probe(&j, 'b', b[0]);
    struct probe zs = probe(&j, 'z', -1), tm = probe(&j, 't', -1);
    assert_int_equal(vg_loop_add_socket(loop, server, on_event, &zs), 0);
    assert_int_equal(vg_loop_add_fd(loop, c[0], on_event, &pc), 0);
    assert_int_equal(vg_loop_add_fd(loop, a[0], on_event, &pa), 0);
    assert_int_equal(vg_loop_add_fd(loop, b[0], on_event, &pb), 0);
    int id = vg_loop_add_timer(loop, 1000, on_event, &tm);
    assert_int_equal(vg_loop_timer_due_now(loop, id), 0);

    assert_int_equal(write(b[1], "x", 1), 1);
    assert_int_equal(write(a[1], "x", 1), 1);
    assert_int_equal(write(c[1], "x", 1), 1);
    assert_int_equal(zmq_send(client, "hi", 2, 0), 2);
    /* inproc delivery is asynchronous: wait until the socket reports it readable. */
    zmq_pollitem_t ready = {server, 0, ZMQ_POLLIN, 0};
    assert_int_equal(zmq_poll(&ready, 1, 2000), 1);

    assert_int_equal(vg_loop_run_once(loop, 0), 0);
    assert_string_equal(j.order, "zcabt");
    char msg[8];
    assert_int_equal(zmq_recv(server, msg, sizeof(msg), 0), 2);

    vg_loop_destroy(&loop);
    zmq_close(client);
    zmq_close(server);
    zmq_ctx_term(zctx);
    close_pipe(a);
    close_pipe(b);
    close_pipe(c);
}

static void test_removed_fd_not_called(void **unused)
{
    (void)unused;
    struct journal j = {0};
    int a[2], b[2];
    make_pipe(a);
    make_pipe(b);
    vg_loop_t *loop = vg_loop_new();
    struct probe pa = probe(&j, 'a', a[0]), pb = probe(&j, 'b', b[0]);
    assert_int_equal(vg_loop_add_fd(loop, a[0], on_event, &pa), 0);
    assert_int_equal(vg_loop_add_fd(loop, b[0], on_event, &pb), 0);

    /* Removed between turns: readable, but never called again. */
    assert_int_equal(vg_loop_remove_fd(loop, a[0]), 0);
    assert_int_equal(vg_loop_remove_fd(loop, a[0]), -ENOENT);
    assert_int_equal(write(a[1], "x", 1), 1);
    assert_int_equal(write(b[1], "x", 1), 1);
    assert_int_equal(vg_loop_run_once(loop, 100), 0);
    assert_string_equal(j.order, "b");
    assert_int_equal(pa.calls, 0);

    vg_loop_destroy(&loop);

    /* Removed by an earlier handler in the same turn: not called in that turn either. */
    int c[2];
    make_pipe(c);
    loop = vg_loop_new();
    struct probe pc = probe(&j, 'c', c[0]);
    pc.remove_fd = a[0];
    assert_int_equal(vg_loop_add_fd(loop, c[0], on_event, &pc), 0);
    assert_int_equal(vg_loop_add_fd(loop, a[0], on_event, &pa), 0); /* a is still readable */
    assert_int_equal(write(c[1], "x", 1), 1);
    j = (struct journal){0};
    assert_int_equal(vg_loop_run_once(loop, 100), 0);
    assert_string_equal(j.order, "c");
    assert_int_equal(pa.calls, 0);
    assert_int_equal(vg_loop_remove_fd(loop, a[0]), -ENOENT);

    vg_loop_destroy(&loop);
    close_pipe(a);
    close_pipe(b);
    close_pipe(c);
}

static void on_alarm(int sig)
{
    (void)sig;
}

static void test_interrupted_poll_is_not_an_error(void **unused)
{
    (void)unused;
    int fds[2];
    make_pipe(fds);
    struct sigaction sa = {.sa_handler = on_alarm}, old;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
    vg_loop_t *loop = vg_loop_new();
    struct probe p = probe(NULL, 'a', fds[0]);
    assert_int_equal(vg_loop_add_fd(loop, fds[0], on_event, &p), 0);

    struct itimerval in_50ms = {.it_value = {.tv_usec = 50000}};
    assert_int_equal(setitimer(ITIMER_REAL, &in_50ms, NULL), 0);
    int64_t t0 = vg_mono_ms();
    assert_int_equal(vg_loop_run_once(loop, 3000), 0);
    assert_true(vg_mono_ms() - t0 < 2000); /* woken by the signal, not the cap */
    assert_int_equal(p.calls, 0);

    vg_loop_destroy(&loop);
    sigaction(SIGALRM, &old, NULL);
    close_pipe(fds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fd_handler_called_when_readable),
        cmocka_unit_test(test_timer_fires_at_interval),
        cmocka_unit_test(test_interval_zero_runs_only_when_due),
        cmocka_unit_test(test_stop_returns_code),
        cmocka_unit_test(test_handlers_in_registration_order),
        cmocka_unit_test(test_removed_fd_not_called),
        cmocka_unit_test(test_interrupted_poll_is_not_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
