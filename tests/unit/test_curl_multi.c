/*
 * The libcurl multi wait helper (common/curl_multi.c) against loopback servers this test runs:
 * one that answers every request with a canned response, and one that listens but never
 * accepts, so a request to it hangs until something ends the wait. Checked: transfers complete
 * with their own result, a deadline ends a hanging one, the cancel fd and a curl_multi_wakeup
 * end a wait at once, and a step that finished a transfer returns without waiting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "curl_multi.h"
#include "timeutil.h"

#define BODY "hello from loopback\n"

static const char canned[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n"
                             "Connection: close\r\n\r\n" BODY;

/* A socket listening on 127.0.0.1 at a free port. */
static int listener(int *ret_port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(listen(fd, 64), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    *ret_port = ntohs(addr.sin_port);
    return fd;
}

/* The answering server: reads each request's head, writes the canned response, closes. */
struct answering {
    int fd, port;
    pthread_t thread;
};

static void *answer_all(void *arg)
{
    struct answering *srv = arg;
    char head[4096];

    for (;;) {
        int conn = accept(srv->fd, NULL, NULL);
        if (conn < 0)
            return NULL; /* shutdown() by answering_stop */
        size_t got = 0;
        while (got < sizeof head - 1) {
            ssize_t n = recv(conn, head + got, sizeof head - 1 - got, 0);
            if (n <= 0)
                break;
            got += (size_t)n;
            head[got] = '\0';
            if (strstr(head, "\r\n\r\n"))
                break;
        }
        for (size_t off = 0; off < sizeof canned - 1;) {
            ssize_t n = send(conn, canned + off, sizeof canned - 1 - off, MSG_NOSIGNAL);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        close(conn);
    }
}

static void answering_start(struct answering *srv)
{
    srv->fd = listener(&srv->port);
    assert_int_equal(pthread_create(&srv->thread, NULL, answer_all, srv), 0);
}

static void answering_stop(struct answering *srv)
{
    shutdown(srv->fd, SHUT_RDWR); /* accept returns */
    pthread_join(srv->thread, NULL);
    close(srv->fd);
}

/* ---- easy handles ------------------------------------------------------------------------ */

struct body {
    char data[256];
    size_t len;
};

static size_t keep(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct body *b = userdata;
    size_t n = size * nmemb;
    size_t room = sizeof b->data - 1 - b->len;
    memcpy(b->data + b->len, data, n < room ? n : room);
    b->len += n < room ? n : room;
    b->data[b->len] = '\0';
    return n;
}

/* A GET of http://127.0.0.1:<port>/ with no timeout of libcurl's own: only the helper ends it. */
static CURL *get(int port, struct body *body)
{
    char url[64];
    CURL *easy = curl_easy_init();

    assert_non_null(easy);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    memset(body, 0, sizeof *body);
    assert_int_equal(curl_easy_setopt(easy, CURLOPT_URL, url), CURLE_OK);
    assert_int_equal(curl_easy_setopt(easy, CURLOPT_PROXY, ""), CURLE_OK);
    assert_int_equal(curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L), CURLE_OK);
    assert_int_equal(curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, keep), CURLE_OK);
    assert_int_equal(curl_easy_setopt(easy, CURLOPT_WRITEDATA, body), CURLE_OK);
    return easy;
}

/* ---- things that end a wait from another thread ------------------------------------------ */

struct later {
    int64_t after_ms;
    int event_fd;      /* >= 0: written */
    CURLM *multi;      /* non-NULL: curl_multi_wakeup */
    atomic_bool *flag; /* non-NULL: set before the wakeup */
    pthread_t thread;
};

static void *do_later(void *arg)
{
    struct later *l = arg;
    usleep((useconds_t)l->after_ms * 1000);
    if (l->flag)
        atomic_store(l->flag, true);
    if (l->event_fd >= 0) {
        uint64_t one = 1;
        /* Not a cmocka assert (this is not the test's thread): a failed write shows as a wait
         * that nothing ended. */
        if (write(l->event_fd, &one, sizeof one) != (ssize_t)sizeof one)
            perror("eventfd write");
    }
    if (l->multi)
        curl_multi_wakeup(l->multi);
    return NULL;
}

static void later_start(struct later *l)
{
    assert_int_equal(pthread_create(&l->thread, NULL, do_later, l), 0);
}

static bool flag_set(void *userdata)
{
    return atomic_load((atomic_bool *)userdata);
}

static void assert_took(int64_t started, int64_t at_least_ms, int64_t under_ms)
{
    int64_t took = vg_mono_ms() - started;
    if (took < at_least_ms || took >= under_ms)
        fail_msg("took %lld ms, expected %lld..%lld", (long long)took, (long long)at_least_ms,
                 (long long)under_ms);
}

/* ---- vg_curl_multi_transfer -------------------------------------------------------------- */

static void test_transfer_completes(void **state)
{
    (void)state;
    struct answering srv;
    struct body body;
    bool cancelled = true;
    long status = 0;

    answering_start(&srv);
    CURLM *multi = curl_multi_init();
    CURL *easy = get(srv.port, &body);
    CURLcode result = vg_curl_multi_transfer(multi, easy, NULL, vg_mono_ms() + 5000, &cancelled);
    assert_int_equal(result, CURLE_OK);
    assert_false(cancelled);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    assert_int_equal(status, 200);
    assert_string_equal(body.data, BODY);

    /* The handle was removed again: the same easy handle runs a second time. */
    memset(&body, 0, sizeof body);
    result = vg_curl_multi_transfer(multi, easy, NULL, vg_mono_ms() + 5000, &cancelled);
    assert_int_equal(result, CURLE_OK);
    assert_string_equal(body.data, BODY);

    /* A refused connection is the transfer's own result, not a timeout. */
    curl_easy_cleanup(easy);
    answering_stop(&srv);
    easy = get(srv.port, &body);
    result = vg_curl_multi_transfer(multi, easy, NULL, vg_mono_ms() + 5000, &cancelled);
    assert_int_equal(result, CURLE_COULDNT_CONNECT);
    assert_false(cancelled);
    curl_easy_cleanup(easy);
    curl_multi_cleanup(multi);
}

/* A request to a listener that never accepts: it hangs until something ends the wait. */
struct hanging {
    int fd, port;
    CURLM *multi;
    CURL *easy;
    struct body body;
};

static void hanging_open(struct hanging *h)
{
    h->fd = listener(&h->port);
    h->multi = curl_multi_init();
    assert_non_null(h->multi);
    h->easy = get(h->port, &h->body);
}

static void hanging_close(struct hanging *h)
{
    curl_easy_cleanup(h->easy);
    curl_multi_cleanup(h->multi);
    close(h->fd);
}

/* Runs the hanging request with a 30 s deadline: hooks must cancel it within the bounds. */
static void assert_cancelled(struct hanging *h, const struct vg_curl_hooks *hooks,
                             int64_t at_least_ms, int64_t under_ms)
{
    bool cancelled = false;
    int64_t started = vg_mono_ms();

    vg_curl_multi_transfer(h->multi, h->easy, hooks, started + 30000, &cancelled);
    assert_true(cancelled);
    assert_took(started, at_least_ms, under_ms);
}

static void test_transfer_deadline(void **state)
{
    (void)state;
    struct hanging h;
    bool cancelled = true;

    hanging_open(&h);
    int64_t started = vg_mono_ms();
    CURLcode result = vg_curl_multi_transfer(h.multi, h.easy, NULL, started + 300, &cancelled);
    assert_int_equal(result, CURLE_OPERATION_TIMEDOUT);
    assert_false(cancelled);
    assert_took(started, 290, 1000);

    /* A deadline already past still gives the transfer one turn, then stops. */
    started = vg_mono_ms();
    result = vg_curl_multi_transfer(h.multi, h.easy, NULL, started - 1, &cancelled);
    assert_int_equal(result, CURLE_OPERATION_TIMEDOUT);
    assert_took(started, 0, 200);
    hanging_close(&h);
}

/* The agent's cancel_fd: a hanging request ends as soon as the fd turns readable. */
static void test_transfer_cancel_fd(void **state)
{
    (void)state;
    struct hanging h;
    int cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct vg_curl_hooks hooks = {.cancel_fd = cancel_fd};
    struct later later = {.after_ms = 200, .event_fd = cancel_fd};

    assert_true(cancel_fd >= 0);
    hanging_open(&h);
    later_start(&later);
    assert_cancelled(&h, &hooks, 150, 800);
    pthread_join(later.thread, NULL);
    /* Once readable it stays so (the agent never drains it): the next transfer gives up at
     * its first wait. */
    assert_cancelled(&h, &hooks, 0, 200);
    hanging_close(&h);
    close(cancel_fd);
}

/* The PromQL poller's way: a flag, then curl_multi_wakeup. Well under the one-second slice, so
 * it is the wakeup that ends the wait. */
static void test_transfer_cancelled_by_wakeup(void **state)
{
    (void)state;
    struct hanging h;
    atomic_bool stop = false;
    struct vg_curl_hooks hooks = {.cancel_fd = -1, .cancelled = flag_set, .userdata = &stop};

    hanging_open(&h);
    struct later later = {.after_ms = 200, .event_fd = -1, .multi = h.multi, .flag = &stop};
    later_start(&later);
    assert_cancelled(&h, &hooks, 150, 800);
    pthread_join(later.thread, NULL);
    hanging_close(&h);
}

/* ---- vg_curl_multi_step ------------------------------------------------------------------ */

struct finished {
    CURL *easy[8];
    CURLcode result[8];
    size_t n;
};

static void record_done(void *userdata, CURL *easy, CURLcode result)
{
    struct finished *f = userdata;
    assert_true(f->n < sizeof f->easy / sizeof f->easy[0]);
    f->easy[f->n] = easy;
    f->result[f->n] = result;
    f->n++;
}

/* Several transfers at once, one of them hanging: each finished one is reported once, the step
 * that reports one does not wait (the caller acts first), and the cancel fd ends the wait for
 * the one left. */
static void test_step_several(void **state)
{
    (void)state;
    struct answering srv;
    int hang_port;
    int hang_fd = listener(&hang_port);
    int cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct body bodies[4];
    CURL *easy[4];
    struct finished done = {0};
    struct vg_curl_hooks hooks = {.cancel_fd = cancel_fd, .done = record_done, .userdata = &done};

    answering_start(&srv);
    CURLM *multi = curl_multi_init();
    for (size_t i = 0; i < 4; i++) {
        easy[i] = get(i == 3 ? hang_port : srv.port, &bodies[i]);
        assert_int_equal(curl_multi_add_handle(multi, easy[i]), CURLM_OK);
    }
    int running = -1;
    int64_t started = vg_mono_ms();
    while (done.n < 3 && vg_mono_ms() - started < 5000) {
        size_t before = done.n;
        int64_t step_started = vg_mono_ms();
        assert_int_equal(vg_curl_multi_step(multi, &hooks, 10000, &running), 0);
        if (done.n > before) /* a step that finished a transfer returned without waiting */
            assert_took(step_started, 0, 100);
    }
    assert_int_equal(done.n, 3);
    assert_int_equal(running, 1);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(done.result[i], CURLE_OK);
        assert_true(done.easy[i] != easy[3]);
        curl_multi_remove_handle(multi, done.easy[i]);
    }
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(bodies[i].data, BODY);

    /* Only the hanging one is left: steps wait (libcurl's timers may end a wait early, so the
     * caller loops), and the cancel fd ends the waiting. */
    struct later later = {.after_ms = 200, .event_fd = cancel_fd};
    later_start(&later);
    started = vg_mono_ms();
    int r;
    do {
        running = -1;
        r = vg_curl_multi_step(multi, &hooks, 10000, &running);
    } while (r == 0 && running == 1 && vg_mono_ms() - started < 5000);
    assert_int_equal(r, -ECANCELED);
    assert_int_equal(running, -1); /* untouched on failure */
    assert_took(started, 150, 800);
    pthread_join(later.thread, NULL);
    assert_int_equal(done.n, 3);

    for (size_t i = 0; i < 4; i++) {
        curl_multi_remove_handle(multi, easy[i]);
        curl_easy_cleanup(easy[i]);
    }
    curl_multi_cleanup(multi);
    answering_stop(&srv);
    close(cancel_fd);
    close(hang_fd);
}

/* With nothing in flight a step is a sleep: the whole wait, cut short by curl_multi_wakeup,
 * none at all for 0. */
static void test_step_idle(void **state)
{
    (void)state;
    CURLM *multi = curl_multi_init();
    int running = -1;

    int64_t started = vg_mono_ms();
    assert_int_equal(vg_curl_multi_step(multi, NULL, 300, &running), 0);
    assert_int_equal(running, 0);
    assert_took(started, 290, 1000);

    started = vg_mono_ms();
    assert_int_equal(vg_curl_multi_step(multi, NULL, 0, NULL), 0);
    assert_took(started, 0, 100);

    struct later later = {.after_ms = 200, .event_fd = -1, .multi = multi};
    later_start(&later);
    started = vg_mono_ms();
    assert_int_equal(vg_curl_multi_step(multi, NULL, 10000, NULL), 0);
    assert_took(started, 150, 800);
    pthread_join(later.thread, NULL);
    curl_multi_cleanup(multi);
}

static int setup(void **state)
{
    (void)state;
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transfer_completes),
        cmocka_unit_test(test_transfer_deadline),
        cmocka_unit_test(test_transfer_cancel_fd),
        cmocka_unit_test(test_transfer_cancelled_by_wakeup),
        cmocka_unit_test(test_step_several),
        cmocka_unit_test(test_step_idle),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
