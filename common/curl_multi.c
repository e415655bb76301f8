#include "curl_multi.h"

#include <errno.h>
#include <limits.h>

#include "timeutil.h"

#define SLICE_MS 1000 /* the longest wait in a transfer: hooks->cancelled is asked this often */

static int multi_errno(CURLMcode code)
{
    return code == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
}

/* curl_multi_perform, then done(userdata, ...) for each finished transfer. */
static int progress(CURLM *multi, void (*done)(void *, CURL *, CURLcode), void *userdata,
                    int *ret_running, int *ret_finished)
{
    int running = 0, finished = 0;
    CURLMsg *msg;
    int left;

    CURLMcode code = curl_multi_perform(multi, &running);
    while ((msg = curl_multi_info_read(multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        finished++;
        /* Read before done: it may clean the easy handle up, and msg with it. */
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        if (done)
            done(userdata, easy, result);
    }
    *ret_running = running;
    *ret_finished = finished;
    return code == CURLM_OK ? 0 : multi_errno(code);
}

/* curl_multi_poll for up to wait_ms, watching hooks->cancel_fd; then asks hooks->cancelled. */
static int wait_once(CURLM *multi, const struct vg_curl_hooks *hooks, int64_t wait_ms)
{
    int cancel_fd = hooks ? hooks->cancel_fd : -1;
    struct curl_waitfd extra = {.fd = cancel_fd, .events = CURL_WAIT_POLLIN};

    CURLMcode code = curl_multi_poll(multi, cancel_fd >= 0 ? &extra : NULL, cancel_fd >= 0 ? 1 : 0,
                                     (int)wait_ms, NULL);
    if (code != CURLM_OK)
        return multi_errno(code);
    if (extra.revents)
        return -ECANCELED;
    if (hooks && hooks->cancelled && hooks->cancelled(hooks->userdata))
        return -ECANCELED;
    return 0;
}

struct one {
    CURL *easy;
    bool finished;
    CURLcode result;
};

/* cppcheck-suppress constParameter ; the type is vg_curl_hooks.done's */
static void one_done(void *userdata, CURL *easy, CURLcode result)
{
    struct one *one = userdata;
    if (easy != one->easy)
        return;
    one->finished = true;
    one->result = result;
}

CURLcode vg_curl_multi_transfer(CURLM *multi, CURL *easy, const struct vg_curl_hooks *hooks,
                                int64_t deadline_ms, bool *ret_cancelled)
{
    struct one one = {.easy = easy, .result = CURLE_OK};
    CURLcode result;

    *ret_cancelled = false;
    if (curl_multi_add_handle(multi, easy) != CURLM_OK)
        return CURLE_OUT_OF_MEMORY;
    for (;;) {
        int running, finished;
        if (progress(multi, one_done, &one, &running, &finished) < 0) {
            result = CURLE_OUT_OF_MEMORY;
            break;
        }
        if (one.finished) {
            result = one.result;
            break;
        }
        if (!running) { /* finished without a message: not expected from libcurl */
            result = CURLE_RECV_ERROR;
            break;
        }
        int64_t remaining = deadline_ms - vg_mono_ms();
        if (remaining <= 0) {
            result = CURLE_OPERATION_TIMEDOUT;
            break;
        }
        int r = wait_once(multi, hooks, remaining < SLICE_MS ? remaining : SLICE_MS);
        if (r == -ECANCELED) {
            *ret_cancelled = true;
            result = CURLE_OK;
            break;
        }
        if (r < 0) {
            result = CURLE_OUT_OF_MEMORY;
            break;
        }
    }
    curl_multi_remove_handle(multi, easy);
    return result;
}

int vg_curl_multi_step(CURLM *multi, const struct vg_curl_hooks *hooks, int64_t wait_ms,
                       int *ret_running)
{
    int running, finished;

    int r = progress(multi, hooks ? hooks->done : NULL, hooks ? hooks->userdata : NULL, &running,
                     &finished);
    if (finished == 0 && wait_ms > 0) {
        int waited = wait_once(multi, hooks, wait_ms > INT_MAX ? INT_MAX : wait_ms);
        if (r == 0)
            r = waited;
    }
    if (r == 0 && ret_running)
        *ret_running = running;
    return r;
}
