/*
 * One event loop for a daemon's main thread: ZeroMQ sockets and file descriptors that call a
 * handler when they are readable, and timers. The agent and the coordinator register what
 * they serve by handler, instead of keeping zmq_pollitem arrays addressed by position and
 * next-tick times by hand.
 *
 * A turn (vg_loop_run_once):
 *   1. one zmq_poll over every registered socket and fd (POLLIN only), waiting until the
 *      earliest timer is due, and no longer than the caller's cap;
 *   2. the handler of each socket or fd that is readable, in the order they were registered
 *      (the coordinator registers its ZAP socket first: CURVE handshakes wait on it);
 *   3. the timers that are due, in the order they were added.
 * EINTR from zmq_poll is not an error: the turn goes on with nothing readable.
 *
 * Handlers return 0, or -1 to stop the loop with an error. A handler may call vg_loop_stop to
 * stop it with a code of its own (an exit code). Stopping ends the turn at once: no later
 * handler or timer of that turn is called.
 *
 * Timers are periodic. After a timer's handler runs, it is next due interval_ms after the
 * timer pass of that turn began, whatever the handler's own run time: a timer that overran its
 * interval runs again in the next turn, after the sockets and fds have been served. A timer
 * starts due interval_ms after it was added; vg_loop_timer_due_now makes it due at once (the
 * first run of a collector, work left over from a bounded handler). A timer with interval 0
 * runs only when vg_loop_timer_due_now asks for it: a deferred call.
 *
 * Registering and removing are allowed from inside handlers: a socket, fd or timer added
 * during a turn takes part from the next turn, and one removed is never called again, not
 * even later in the same turn. The loop never closes the sockets and fds it watches: they
 * stay their owners'.
 *
 * Threads: one loop belongs to one thread (ZeroMQ sockets cannot be shared anyway); nothing
 * here takes a lock. A handler must not run the loop that called it (another loop is fine).
 * A turn allocates nothing: memory is reserved when things are added. Like all of libvigil it
 * logs at debug only; errors come back as negative errnos.
 */
#ifndef VG_EVLOOP_H
#define VG_EVLOOP_H

#include <stdint.h>

typedef struct vg_loop vg_loop_t;

/* A socket's, fd's or timer's handler: 0, or -1 to stop the loop with code -1. */
typedef int (*vg_loop_fn)(vg_loop_t *loop, void *userdata);

/* NULL when out of memory. */
vg_loop_t *vg_loop_new(void);
/* Frees the loop (not what it watches) and sets *self_p = NULL. Accepts NULL. */
void vg_loop_destroy(vg_loop_t **self_p);

/* Calls handler when the ZeroMQ socket, or the fd, is readable. 0, -EINVAL (NULL socket or
 * handler, negative fd) or -ENOMEM. */
int vg_loop_add_socket(vg_loop_t *self, void *socket, vg_loop_fn handler, void *userdata);
int vg_loop_add_fd(vg_loop_t *self, int fd, vg_loop_fn handler, void *userdata);
/* Stops watching it (every registration of it). 0, or -ENOENT when it was not watched. */
int vg_loop_remove_socket(vg_loop_t *self, void *socket);
int vg_loop_remove_fd(vg_loop_t *self, int fd);

/* A periodic timer (see above). Returns its id (> 0), -EINVAL (interval < 0, NULL handler) or
 * -ENOMEM. */
int vg_loop_add_timer(vg_loop_t *self, int64_t interval_ms, vg_loop_fn handler, void *userdata);
/* Due at once: it runs in this turn's timer pass if that has not reached it yet, else in the
 * next turn (which then does not wait). 0 or -ENOENT. */
int vg_loop_timer_due_now(vg_loop_t *self, int timer_id);
/* A new interval; next due interval_ms from now (0: only when made due). 0, -EINVAL, -ENOENT. */
int vg_loop_timer_set_interval(vg_loop_t *self, int timer_id, int64_t interval_ms);
/* 0 or -ENOENT. */
int vg_loop_remove_timer(vg_loop_t *self, int timer_id);

/* Ends the current turn and the run, with code. Called outside a handler, it ends the next
 * turn before it polls. */
void vg_loop_stop(vg_loop_t *self, int code);
/* The code the last stop gave (vg_loop_stop's, or -1 from a handler). */
int vg_loop_stop_code(const vg_loop_t *self);

/*
 * One turn. max_wait_ms caps the poll's wait (0: do not wait; negative: no cap besides the
 * timers; with no timer either, it waits until something is readable). Returns 0 when the
 * loop goes on, 1 when a handler stopped it (the code is vg_loop_stop_code), or the negative
 * errno of a failed zmq_poll (the caller logs zmq_strerror of it).
 */
int vg_loop_run_once(vg_loop_t *self, int64_t max_wait_ms);

/* Turns until a handler stops the loop. Returns the stop code (vg_loop_stop's, -1 from a
 * handler that returned -1), or the negative errno of a failed zmq_poll. */
int vg_loop_run(vg_loop_t *self);

#endif
