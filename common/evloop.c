#include "evloop.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <zmq.h>

#include "log.h"
#include "timeutil.h"

#define DUE_NEVER INT64_MAX /* an interval-0 timer nobody has made due */
#define DUE_NOW INT64_MIN   /* made due by vg_loop_timer_due_now: before any clock reading */

struct watch {
    void *socket; /* NULL for an fd */
    int fd;
    vg_loop_fn handler;
    void *userdata;
    bool removed; /* dropped at the start of the next turn */
};

struct timer {
    int id;
    int64_t interval_ms;
    int64_t due; /* mono ms, DUE_NEVER or DUE_NOW */
    vg_loop_fn handler;
    void *userdata;
    bool removed;
};

struct vg_loop {
    struct watch *watches;
    zmq_pollitem_t *pollset; /* as many slots as watches: a turn never allocates */
    size_t nwatches, watch_cap;
    struct timer *timers;
    size_t ntimers, timer_cap;
    int last_timer_id;
    bool stopped;
    int stop_code;
};

vg_loop_t *vg_loop_new(void)
{
    return calloc(1, sizeof(vg_loop_t));
}

void vg_loop_destroy(vg_loop_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    vg_loop_t *self = *self_p;
    free(self->watches);
    free(self->pollset);
    free(self->timers);
    free(self);
    *self_p = NULL;
}

static int add_watch(vg_loop_t *self, void *socket, int fd, vg_loop_fn handler, void *userdata)
{
    if (!handler)
        return -EINVAL;
    if (self->nwatches == self->watch_cap) {
        size_t cap = self->watch_cap ? self->watch_cap * 2 : 8;
        struct watch *watches = realloc(self->watches, cap * sizeof(*watches));
        if (!watches)
            return -ENOMEM;
        self->watches = watches;
        zmq_pollitem_t *pollset = realloc(self->pollset, cap * sizeof(*pollset));
        if (!pollset)
            return -ENOMEM; /* watches is merely larger than needed */
        self->pollset = pollset;
        self->watch_cap = cap;
    }
    self->watches[self->nwatches++] =
        (struct watch){.socket = socket, .fd = fd, .handler = handler, .userdata = userdata};
    return 0;
}

int vg_loop_add_socket(vg_loop_t *self, void *socket, vg_loop_fn handler, void *userdata)
{
    return socket ? add_watch(self, socket, -1, handler, userdata) : -EINVAL;
}

int vg_loop_add_fd(vg_loop_t *self, int fd, vg_loop_fn handler, void *userdata)
{
    return fd >= 0 ? add_watch(self, NULL, fd, handler, userdata) : -EINVAL;
}

static int remove_watch(vg_loop_t *self, const void *socket, int fd)
{
    int r = -ENOENT;
    for (size_t i = 0; i < self->nwatches; i++) {
        struct watch *w = &self->watches[i];
        if (!w->removed && w->socket == socket && (socket || w->fd == fd)) {
            w->removed = true;
            r = 0;
        }
    }
    return r;
}

int vg_loop_remove_socket(vg_loop_t *self, void *socket)
{
    return socket ? remove_watch(self, socket, -1) : -ENOENT;
}

int vg_loop_remove_fd(vg_loop_t *self, int fd)
{
    return fd >= 0 ? remove_watch(self, NULL, fd) : -ENOENT;
}

int vg_loop_add_timer(vg_loop_t *self, int64_t interval_ms, vg_loop_fn handler, void *userdata)
{
    if (!handler || interval_ms < 0 || self->last_timer_id == INT_MAX)
        return -EINVAL;
    if (self->ntimers == self->timer_cap) {
        size_t cap = self->timer_cap ? self->timer_cap * 2 : 8;
        struct timer *timers = realloc(self->timers, cap * sizeof(*timers));
        if (!timers)
            return -ENOMEM;
        self->timers = timers;
        self->timer_cap = cap;
    }
    int id = ++self->last_timer_id;
    self->timers[self->ntimers++] = (struct timer){
        .id = id,
        .interval_ms = interval_ms,
        .due = interval_ms > 0 ? vg_mono_ms() + interval_ms : DUE_NEVER,
        .handler = handler,
        .userdata = userdata,
    };
    return id;
}

static struct timer *find_timer(vg_loop_t *self, int timer_id)
{
    for (size_t i = 0; i < self->ntimers; i++) {
        if (self->timers[i].id == timer_id && !self->timers[i].removed)
            return &self->timers[i];
    }
    return NULL;
}

int vg_loop_timer_due_now(vg_loop_t *self, int timer_id)
{
    struct timer *t = find_timer(self, timer_id);
    if (!t)
        return -ENOENT;
    t->due = DUE_NOW;
    return 0;
}

int vg_loop_timer_set_interval(vg_loop_t *self, int timer_id, int64_t interval_ms)
{
    struct timer *t = find_timer(self, timer_id);
    if (!t)
        return -ENOENT;
    if (interval_ms < 0)
        return -EINVAL;
    t->interval_ms = interval_ms;
    t->due = interval_ms > 0 ? vg_mono_ms() + interval_ms : DUE_NEVER;
    return 0;
}

int vg_loop_remove_timer(vg_loop_t *self, int timer_id)
{
    struct timer *t = find_timer(self, timer_id);
    if (!t)
        return -ENOENT;
    t->removed = true;
    return 0;
}

void vg_loop_stop(vg_loop_t *self, int code)
{
    self->stopped = true;
    self->stop_code = code;
}

int vg_loop_stop_code(const vg_loop_t *self)
{
    return self->stop_code;
}

/* Drops what was removed; only between turns, so that no pass loses its place. */
static void compact(vg_loop_t *self)
{
    size_t n = 0;
    for (size_t i = 0; i < self->nwatches; i++) {
        if (!self->watches[i].removed)
            self->watches[n++] = self->watches[i];
    }
    self->nwatches = n;
    n = 0;
    for (size_t i = 0; i < self->ntimers; i++) {
        if (!self->timers[i].removed)
            self->timers[n++] = self->timers[i];
    }
    self->ntimers = n;
}

/* The poll's wait in ms: until the earliest timer, capped by max_wait_ms (< 0: no cap);
 * -1 = until something is readable. */
static long poll_wait(const vg_loop_t *self, int64_t max_wait_ms)
{
    int64_t wait = max_wait_ms < 0 ? -1 : max_wait_ms;
    int64_t now = vg_mono_ms();
    for (size_t i = 0; i < self->ntimers; i++) {
        int64_t due = self->timers[i].due;
        if (due == DUE_NEVER)
            continue;
        int64_t left = due <= now ? 0 : due - now;
        if (wait < 0 || left < wait)
            wait = left;
    }
    return wait > LONG_MAX ? LONG_MAX : (long)wait;
}

/* Calls one handler; false once the loop is stopped. */
static bool call(vg_loop_t *self, vg_loop_fn handler, void *userdata)
{
    if (handler(self, userdata) != 0 && !self->stopped)
        vg_loop_stop(self, -1);
    return !self->stopped;
}

static void run_timers(vg_loop_t *self)
{
    int64_t now = vg_mono_ms();
    size_t n = self->ntimers; /* timers added by a handler wait for the next turn */
    for (size_t i = 0; i < n; i++) {
        /* By index: a handler that adds a timer may move the array, so t is not used after
         * the call. */
        struct timer *t = &self->timers[i];
        if (t->removed || t->due > now)
            continue;
        t->due = t->interval_ms > 0 ? now + t->interval_ms : DUE_NEVER;
        if (!call(self, t->handler, t->userdata))
            return;
    }
}

int vg_loop_run_once(vg_loop_t *self, int64_t max_wait_ms)
{
    if (self->stopped) {
        self->stopped = false;
        return 1;
    }
    compact(self);
    size_t n = self->nwatches; /* watches added by a handler wait for the next turn */
    for (size_t i = 0; i < n; i++) {
        const struct watch *w = &self->watches[i];
        self->pollset[i] = (zmq_pollitem_t){w->socket, w->fd, ZMQ_POLLIN, 0};
    }
    int ready = zmq_poll(self->pollset, (int)n, poll_wait(self, max_wait_ms));
    if (ready < 0) {
        int e = zmq_errno();
        if (e != EINTR) {
            vg_log(VG_LOG_DEBUG, "evloop: zmq_poll: %s", zmq_strerror(e));
            return -e;
        }
        ready = 0;
    }
    for (size_t i = 0; i < n && ready > 0; i++) {
        if (!(self->pollset[i].revents & ZMQ_POLLIN))
            continue;
        ready--;
        struct watch w = self->watches[i]; /* copied: a handler may move the array */
        if (!w.removed && !call(self, w.handler, w.userdata))
            break;
    }
    if (!self->stopped)
        run_timers(self);
    if (!self->stopped)
        return 0;
    self->stopped = false;
    return 1;
}

int vg_loop_run(vg_loop_t *self)
{
    for (;;) {
        int r = vg_loop_run_once(self, -1);
        if (r < 0)
            return r;
        if (r > 0)
            return self->stop_code;
    }
}
