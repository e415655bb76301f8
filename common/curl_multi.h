/*
 * Waiting on a libcurl multi handle, for every module that talks HTTP or SMTP through libcurl:
 * the http probe module (agent/probe/http.c), the PromQL poller (coordinator/incidents/promql.c)
 * and the notifier (coordinator/paging/notify.c).
 *
 * All of them drive their transfers the same way: curl_multi_perform, take the finished
 * transfers from curl_multi_info_read, then curl_multi_poll until a transfer's socket or one of
 * libcurl's timers needs attention, curl_multi_wakeup is called from another thread, a file
 * descriptor of the caller's turns readable (the agent's cancel_fd), or the caller's own wait is
 * over. A multi handle is used instead of curl_easy_perform because only curl_multi_poll can be
 * interrupted: stopping a program never waits for a request's timeout to run out.
 * - vg_curl_multi_transfer runs one request to its end, a deadline or a cancellation, like an
 *   interruptible curl_easy_perform (the http probe, the PromQL poller);
 * - vg_curl_multi_step is one turn, for a loop that has other work between turns and several
 *   transfers in flight (the notifier), or that only waits to be woken (the PromQL poller when
 *   no query is due).
 *
 * Why a library of its own (vigil_curl), outside libvigil: vigil-agent links libvigil but must
 * not map libcurl, whose TLS, Kerberos and LDAP dependencies cost several MiB per process. The
 * agent maps libcurl only through vigil-probe-http.so, loaded when an HTTP target is configured
 * (agent/probe/probe.h). vigil_curl is linked by that module and by the coordinator's core,
 * never by vigil-agent; it needs libcurl and timeutil only, and logs nothing.
 *
 * Threads: a multi handle and its easy handles belong to one thread, which is the only one that
 * calls these functions with them. Another thread may call curl_multi_wakeup (libcurl allows
 * it); set the flag that hooks->cancelled reads before that call.
 */
#ifndef VG_CURL_MULTI_H
#define VG_CURL_MULTI_H

#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>

/* What ends a wait besides the transfers and libcurl's timers, and who hears of a finished
 * transfer. A NULL hooks pointer means none. cancel_fd is always set, to -1 for none (0 is
 * stdin, not "unset"); the functions may be NULL. */
struct vg_curl_hooks {
    int cancel_fd; /* -1, or an fd that turns readable (or fails) to cancel: the agent's eventfd */
    bool (*cancelled)(void *userdata); /* asked after every wake-up: true cancels */
    /* vg_curl_multi_step: called once for each finished transfer, on the caller's thread; it
     * may remove the easy handle from the multi handle and clean it up. */
    void (*done)(void *userdata, CURL *easy, CURLcode result);
    void *userdata; /* for cancelled and done */
};

/*
 * Adds easy to multi (which should hold no other transfer), drives it until it finishes,
 * deadline_ms (monotonic, vg_mono_ms) passes or hooks cancel, and removes it again. Returns
 * the transfer's own result; CURLE_OPERATION_TIMEDOUT at the deadline (set it past the easy
 * handle's CURLOPT_TIMEOUT_MS, as a backstop: libcurl's own timeout says more);
 * CURLE_OUT_OF_MEMORY when the multi interface fails; CURLE_RECV_ERROR if libcurl stopped the
 * transfer without saying how it ended. *ret_cancelled is true when hooks cancelled it, and the
 * result then means nothing. hooks->done is not called. hooks->cancelled is asked at least once
 * a second, even if a curl_multi_wakeup went missing.
 */
CURLcode vg_curl_multi_transfer(CURLM *multi, CURL *easy, const struct vg_curl_hooks *hooks,
                                int64_t deadline_ms, bool *ret_cancelled);

/*
 * One turn: curl_multi_perform, hooks->done for every transfer that finished, and then, only if
 * none did (the caller gets to act on what finished first), a wait of up to wait_ms (0: none)
 * for the transfers' sockets, libcurl's timers, curl_multi_wakeup and hooks->cancel_fd. Returns
 * 0 and sets *ret_running (may be NULL) to the transfers still in flight; -ECANCELED when hooks
 * cancelled the wait; -ENOMEM or -EIO when the multi interface fails. A failing
 * curl_multi_perform still waits, so a loop around this function cannot spin.
 */
int vg_curl_multi_step(CURLM *multi, const struct vg_curl_hooks *hooks, int64_t wait_ms,
                       int *ret_running);

#endif
