/*
 * Fuzz target: a whole /proc tree as the agent's collectors and evidence kinds read it, for what
 * the parsers of fuzz_procfs do not see on their own: which files are read and how their
 * results are combined (pid directories, stat with status and cmdline, mounts chosen for disk
 * usage, socket tables with the processes that hold them, rates over two cycles). The input is a
 * set of files (inputfiles.h: parts "<path>\n<content>" separated by INPUTFILES_SEPARATOR, e.g.
 * "stat", "meminfo", "self/mountinfo", "net/tcp", "1234/stat") written into a private directory
 * that stands for /proc; it is not procfs, so the socket tables are read as text.
 *
 * Run on it: the process table (proctable_write, `vigilctl collect processes`), the socket table
 * (netstat_write_table, `collect netstat`), and two cycles of the host and netstat collectors
 * (host_collector_run, netstat_collector_run), whose samples go into a signal batch.
 *
 * Oracles beyond "no crash, no sanitizer report": an artifact is 0 or -EFBIG (cut at its cap, and
 * never longer than the cap), never another error for a tree that can be listed; the collectors'
 * samples fit the batch.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "inputfiles.h"
#include "log.h"
#include "netstat.h"
#include "proctable.h"
#include "sigbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ARTIFACT_MAX (16 * 1024)

struct sink {
    size_t len;
};

static int sink_write(void *w, const void *data, size_t len)
{
    struct sink *s = w;
    (void)data;
    s->len += len;
    return 0;
}

static void check_artifact(int r, const struct sink *s, const char *err)
{
    if ((r != 0 && r != -EFBIG) || s->len > ARTIFACT_MAX || (r != 0 && err[0] == '\0'))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];

    vg_log_init("fuzz_proc", VG_LOG_ERROR, false);
    inputfiles_unpack(data, size);
    const char *root = inputfiles_dir();

    struct sink s = {0};
    struct artifact_writer out = {sink_write, &s};
    err[0] = '\0';
    check_artifact(proctable_write(root, NULL, ARTIFACT_MAX, &out, err, sizeof(err)), &s, err);
    s.len = 0;
    err[0] = '\0';
    check_artifact(netstat_write_table(root, NULL, ARTIFACT_MAX, &out, err, sizeof(err)), &s, err);

    sigbuf_t *batch = sigbuf_new();
    host_collector_t *host = host_collector_new(root);
    netstat_collector_t *net = netstat_collector_new(root);
    if (!batch || !host || !net)
        abort();
    for (int cycle = 0; cycle < 2; cycle++) {
        struct collect_ctx ctx = {.batch = batch, .now_ms = 1790000000000 + cycle * 10000};
        host_collector_run(host, &ctx);
        netstat_collector_run(net, &ctx);
    }
    netstat_collector_destroy(&net);
    host_collector_destroy(&host);
    sigbuf_destroy(&batch);
    return 0;
}
