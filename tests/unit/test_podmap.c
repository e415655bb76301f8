/*
 * Pod identity: cgroup files of every shape a node shows (tests/unit/fixtures/podmap/cgroup:
 * cgroup v1 and v2, systemd and cgroupfs drivers, containerd and CRI-O, burstable, besteffort
 * and guaranteed pods, a static pod, a view from inside a cgroup namespace) resolved against a
 * /var/log/pods and /var/log/containers tree built here, with hostile directory names beside
 * the real ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "podmap.h"
#include "procfs.h"

#define UID_WEB "8f14e45f-ceea-467f-a0e6-5c1a7f2b3d4e"
#define UID_JOB "11111111-2222-4333-8444-555555555555"
#define UID_STATIC "d41d8cd98f00b204e9800998ecf8427e"
#define CID(c)                                                                                     \
    c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c  \
        c c c c c c c c c c c c c c c c c
#define CID_NGINX CID("a")
#define CID_SIDECAR CID("b")
#define CID_WORKER CID("d")
#define CID_APISERVER CID("e")

static char fixtures[4096];
static char tree[64];
static char pods_dir[128], containers_dir[128];

static int find_fixtures(void)
{
    const char *dir = getenv("VIGIL_FIXTURES");
    int n;
    if (dir && dir[0]) {
        n = snprintf(fixtures, sizeof(fixtures), "%s/podmap/cgroup", dir);
    } else {
        const char *slash = strrchr(__FILE__, '/');
        int len = slash ? (int)(slash - __FILE__) : 1;
        n = snprintf(fixtures, sizeof(fixtures), "%.*s/fixtures/podmap/cgroup", len,
                     slash ? __FILE__ : ".");
    }
    return n > 0 && (size_t)n < sizeof(fixtures) ? 0 : -1;
}

static void make_dir(const char *base, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", base, name);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        fail_msg("mkdir %s: %s", path, strerror(errno));
}

static void make_file(const char *base, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", base, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    close(fd);
}

static void make_link(const char *base, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", base, name);
    assert_int_equal(symlink("/nonexistent/0.log", path), 0);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* A node's log directories: three pods, one static, and junk. */
static int setup(void **state)
{
    (void)state;
    if (find_fixtures() < 0)
        return -1;
    snprintf(tree, sizeof(tree), "/tmp/test_podmap.XXXXXX");
    if (!mkdtemp(tree))
        return -1;
    snprintf(pods_dir, sizeof(pods_dir), "%s/pods", tree);
    snprintf(containers_dir, sizeof(containers_dir), "%s/containers", tree);
    make_dir(tree, "pods");
    make_dir(tree, "containers");

    make_dir(pods_dir, "prod_web-7d4b9c-x2x9k_" UID_WEB);
    make_dir(pods_dir, "prod_web-7d4b9c-x2x9k_" UID_WEB "/nginx");
    make_dir(pods_dir, "prod_web-7d4b9c-x2x9k_" UID_WEB "/sidecar");
    make_file(pods_dir, "prod_web-7d4b9c-x2x9k_" UID_WEB "/nginx/0.log");
    make_dir(pods_dir, "batch_job-1.part2_" UID_JOB);
    make_dir(pods_dir, "batch_job-1.part2_" UID_JOB "/worker");
    make_dir(pods_dir, "kube-system_kube-apiserver-node1_" UID_STATIC);
    make_dir(pods_dir, "kube-system_kube-apiserver-node1_" UID_STATIC "/kube-apiserver");

    /* Hostile or stray names: every one skipped and counted. */
    static const char *const junk[] = {
        "no-underscores",
        "a_b",
        "a_b_c_" UID_WEB,
        "UPPER_web_" UID_WEB,
        "prod_web_not-a-uid",
        "prod__" UID_WEB,
        "_web_" UID_WEB,
        "prod_web-_" UID_WEB,
        "prod_web_" UID_WEB "x",
        "prod_w\xff\xfe_" UID_WEB,
        "prod_web_8F14E45F-CEEA-467F-A0E6-5C1A7F2B3D4E",
        "this-namespace-name-is-far-too-long-for-a-dns-label-at-sixty-four-x_web_" UID_WEB,
    };
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
        make_dir(pods_dir, junk[i]);
    make_file(pods_dir, "stray-file");

    make_link(containers_dir, "web-7d4b9c-x2x9k_prod_nginx-" CID_NGINX ".log");
    make_link(containers_dir, "web-7d4b9c-x2x9k_prod_sidecar-" CID_SIDECAR ".log");
    make_link(containers_dir, "job-1.part2_batch_worker-" CID_WORKER ".log");
    make_link(containers_dir,
              "kube-apiserver-node1_kube-system_kube-apiserver-" CID_APISERVER ".log");
    make_link(containers_dir, "garbage.log");
    make_link(containers_dir, "web_prod_nginx-abc.log");
    /* Same container id under another pod's name: never used for the web pod. */
    make_link(containers_dir, "other_prod_impostor-" CID_NGINX ".log");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return nftw(tree, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static struct procfs_cgroup_ids load_ids(const char *name)
{
    char path[4200], buf[4096];
    size_t len;
    struct procfs_cgroup_ids ids;
    snprintf(path, sizeof(path), "%s/%s", fixtures, name);
    assert_int_equal(procfs_read(path, buf, sizeof(buf), &len), 0);
    memset(&ids, 0, sizeof(ids));
    int r = procfs_parse_cgroup(buf, len, &ids);
    if (r < 0)
        memset(&ids, 0, sizeof(ids));
    return ids;
}

static void expect(podmap_t *map, const char *fixture, int want_r, const char *ns, const char *pod,
                   const char *container, const char *uid)
{
    struct procfs_cgroup_ids ids = load_ids(fixture);
    struct pod_identity id;
    memset(&id, 'z', sizeof(id));
    int r = podmap_resolve(map, &ids, 0, &id);
    if (r != want_r)
        fail_msg("%s: got %d, want %d", fixture, r, want_r);
    if (r < 0) {
        assert_int_equal(id.namespace[0], 'z'); /* untouched */
        return;
    }
    if (strcmp(id.namespace, ns) || strcmp(id.pod, pod) || strcmp(id.container, container) ||
        strcmp(id.uid, uid))
        fail_msg("%s: got %s/%s/%s uid %s, want %s/%s/%s uid %s", fixture, id.namespace, id.pod,
                 id.container, id.uid, ns, pod, container, uid);
}

static void test_cgroup_shapes(void **state)
{
    (void)state;
    podmap_t *map = podmap_new(pods_dir, containers_dir);
    assert_non_null(map);
    const char *web = "web-7d4b9c-x2x9k", *job = "job-1.part2";

    /* cgroup v2, systemd driver */
    expect(map, "v2_systemd_containerd_burstable", 0, "prod", web, "nginx", UID_WEB);
    expect(map, "v2_systemd_crio_burstable", 0, "prod", web, "sidecar", UID_WEB);
    expect(map, "v2_systemd_containerd_besteffort", 0, "batch", job, "worker", UID_JOB);
    expect(map, "v2_systemd_crio_guaranteed", 0, "batch", job, "worker", UID_JOB);
    /* cgroup v2, seen from inside the agent's own cgroup namespace ("/../../kubepods-...") */
    expect(map, "v2_cgroupns_containerd", 0, "prod", web, "nginx", UID_WEB);
    /* cgroup v2, cgroupfs driver */
    expect(map, "v2_cgroupfs_containerd_burstable", 0, "prod", web, "sidecar", UID_WEB);
    expect(map, "v2_cgroupfs_crio_guaranteed", 0, "batch", job, "worker", UID_JOB); /* crio-<id> */
    /* CRI-O's monitor beside the container: in the pod, in no container */
    expect(map, "v2_cgroupfs_crio_conmon", 0, "batch", job, "", UID_JOB);
    /* cgroup v1: one line per hierarchy */
    expect(map, "v1_cgroupfs_containerd_besteffort", 0, "batch", job, "worker", UID_JOB);
    expect(map, "v1_cgroupfs_containerd_guaranteed", 0, "prod", web, "nginx", UID_WEB);
    expect(map, "v1_systemd_crio_burstable", 0, "prod", web, "sidecar", UID_WEB);
    expect(map, "v1_systemd_containerd_besteffort", 0, "batch", job, "worker", UID_JOB);
    /* A static pod: its uid is the manifest's hash, in the cgroup and the directory alike */
    expect(map, "v2_static_pod", 0, "kube-system", "kube-apiserver-node1", "kube-apiserver",
           UID_STATIC);
    /* The sandbox: its pod is known, its container is not (no log names it) */
    expect(map, "v2_systemd_containerd_pause", 0, "prod", web, "", UID_WEB);
    /* Not a pod, or a pod no directory names */
    expect(map, "v2_unknown_pod", -ENOENT, NULL, NULL, NULL, NULL);
    expect(map, "v2_docker_no_pod", -ENOENT, NULL, NULL, NULL, NULL);
    expect(map, "v2_host_process", -ENOENT, NULL, NULL, NULL, NULL);

    struct podmap_stats st;
    podmap_get_stats(map, &st);
    assert_int_equal(st.pods, 3);
    assert_int_equal(st.containers, 5);
    assert_true(st.malformed >= 12 + 2); /* the junk pod directories and links */
    assert_true(st.unresolved >= 1);
    podmap_destroy(&map);
    assert_null(map);
    podmap_destroy(&map); /* NULL is fine */
}

/* Without /var/log/containers: a pod's only container is named, two are not told apart. */
static void test_without_containers_dir(void **state)
{
    (void)state;
    char missing[256];
    snprintf(missing, sizeof(missing), "%s/absent", tree);
    podmap_t *map = podmap_new(pods_dir, missing);
    assert_non_null(map);
    expect(map, "v2_systemd_containerd_besteffort", 0, "batch", "job-1.part2", "worker", UID_JOB);
    expect(map, "v2_systemd_containerd_burstable", 0, "prod", "web-7d4b9c-x2x9k", "", UID_WEB);
    podmap_destroy(&map);

    /* Nothing at all: no pod is named, nothing breaks. */
    map = podmap_new(missing, missing);
    expect(map, "v2_systemd_containerd_burstable", -ENOENT, NULL, NULL, NULL, NULL);
    podmap_destroy(&map);
}

/* An unknown uid rescans, but not more often than PODMAP_RESCAN_MS; a new pod is then found. */
static void test_rescan_rate(void **state)
{
    (void)state;
    podmap_t *map = podmap_new(pods_dir, containers_dir);
    struct procfs_cgroup_ids ids = {{0}, "22222222-3333-4444-8555-666666666666"};
    struct pod_identity id;
    struct podmap_stats st;

    assert_int_equal(podmap_resolve(map, &ids, 1000, &id), -ENOENT);
    podmap_get_stats(map, &st);
    uint64_t scans = st.scans;
    for (int i = 0; i < 100; i++)
        assert_int_equal(podmap_resolve(map, &ids, 1000 + i, &id), -ENOENT);
    podmap_get_stats(map, &st);
    assert_int_equal(st.scans, scans); /* a hundred misses, no scan */

    make_dir(pods_dir, "late_newpod_22222222-3333-4444-8555-666666666666");
    assert_int_equal(podmap_resolve(map, &ids, 1000 + PODMAP_RESCAN_MS - 1, &id), -ENOENT);
    assert_int_equal(podmap_resolve(map, &ids, 1000 + PODMAP_RESCAN_MS, &id), 0);
    assert_string_equal(id.namespace, "late");
    assert_string_equal(id.pod, "newpod");
    assert_string_equal(id.container, "");

    /* Known pods cost no scan at all. */
    podmap_get_stats(map, &st);
    scans = st.scans;
    for (int i = 0; i < 100; i++)
        assert_int_equal(podmap_resolve(map, &ids, 0, &id), 0);
    podmap_get_stats(map, &st);
    assert_int_equal(st.scans, scans);

    /* A pod that went away is forgotten by the next scan another miss causes. */
    char path[512];
    snprintf(path, sizeof(path), "%s/late_newpod_22222222-3333-4444-8555-666666666666", pods_dir);
    assert_int_equal(rmdir(path), 0);
    struct procfs_cgroup_ids other = {{0}, "33333333-3333-4444-8555-666666666666"};
    assert_int_equal(podmap_resolve(map, &other, 100000, &id), -ENOENT);
    assert_int_equal(podmap_resolve(map, &ids, 100000, &id), -ENOENT);
    podmap_destroy(&map);
}

static void test_names(void **state)
{
    (void)state;
    struct pod_identity id;
    char cid[PROCFS_CONTAINER_ID_MAX];

    assert_int_equal(podmap_parse_pod_dir("default_web-0_" UID_WEB, &id), 0);
    assert_string_equal(id.namespace, "default");
    assert_string_equal(id.pod, "web-0");
    assert_string_equal(id.uid, UID_WEB);
    assert_string_equal(id.container, "");
    static const char *const bad_dirs[] = {
        "",
        "_",
        "__",
        "a_b_",
        "a__" UID_WEB,
        "a_b_c_d",
        "a_B_" UID_WEB,
        "a_b._" UID_WEB,
        "a_.b_" UID_WEB,
        "a-_b_" UID_WEB,
        "a_b_" UID_STATIC "0",
        "a_b_" UID_WEB "\n",
    };
    for (size_t i = 0; i < sizeof(bad_dirs) / sizeof(bad_dirs[0]); i++) {
        memset(&id, 'z', sizeof(id));
        if (podmap_parse_pod_dir(bad_dirs[i], &id) != -EINVAL)
            fail_msg("accepted pod directory \"%s\"", bad_dirs[i]);
        assert_int_equal(id.namespace[0], 'z');
    }
    /* A pod name of 253 characters is a pod; 254 is not. */
    char name[600];
    memset(name, 0, sizeof(name));
    memcpy(name, "ns_", 3);
    for (int i = 0; i < 253; i++)
        name[3 + i] = (i % 64 == 63) ? '.' : 'p';
    memcpy(name + 3 + 253, "_" UID_WEB, sizeof("_" UID_WEB));
    assert_int_equal(podmap_parse_pod_dir(name, &id), 0);
    assert_int_equal(strlen(id.pod), 253);
    memmove(name + 4, name + 3, strlen(name + 3) + 1);
    name[3] = 'p';
    assert_int_equal(podmap_parse_pod_dir(name, &id), -EINVAL);

    assert_true(podmap_container_name_valid("nginx"));
    assert_true(podmap_container_name_valid("a"));
    assert_false(podmap_container_name_valid("."));
    assert_false(podmap_container_name_valid(".."));
    assert_false(podmap_container_name_valid("Nginx"));
    assert_false(podmap_container_name_valid("-x"));
    assert_false(podmap_container_name_valid(""));

    assert_int_equal(podmap_parse_container_link("p_ns_c-" CID_NGINX ".log", &id, cid), 0);
    assert_string_equal(id.pod, "p");
    assert_string_equal(id.namespace, "ns");
    assert_string_equal(id.container, "c");
    assert_string_equal(cid, CID_NGINX);
    static const char *const bad_links[] = {
        "p_ns_c-" CID_NGINX,        "p_ns_c-" CID_NGINX ".log.1", "p_ns_c" CID_NGINX ".log",
        "p_ns-" CID_NGINX ".log",   "p_ns_c_d-" CID_NGINX ".log", ".log",
        "p_ns_C-" CID_NGINX ".log", "p_ns_c-" CID("A") ".log",    "",
    };
    for (size_t i = 0; i < sizeof(bad_links) / sizeof(bad_links[0]); i++) {
        if (podmap_parse_container_link(bad_links[i], &id, cid) != -EINVAL)
            fail_msg("accepted container link \"%s\"", bad_links[i]);
    }

    char text[512];
    struct pod_identity shown = {"ns", "pod", "", UID_WEB};
    podmap_identity_text(&shown, text, sizeof(text));
    assert_string_equal(text, "ns/pod/-");
    snprintf(shown.container, sizeof(shown.container), "app");
    podmap_identity_text(&shown, text, sizeof(text));
    assert_string_equal(text, "ns/pod/app");
}

/* Through a /proc: a process's cgroup file read, then resolved. */
static void test_resolve_pid(void **state)
{
    (void)state;
    char proc[256], path[512], src[4200];
    snprintf(proc, sizeof(proc), "%s/proc", tree);
    make_dir(tree, "proc");
    make_dir(proc, "42");
    snprintf(path, sizeof(path), "%s/42/cgroup", proc);
    snprintf(src, sizeof(src), "%s/v1_systemd_crio_burstable", fixtures);
    char buf[4096];
    size_t len;
    assert_int_equal(procfs_read(src, buf, sizeof(buf), &len), 0);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fwrite(buf, 1, len, f);
    fclose(f);

    int proc_fd = open(proc, O_RDONLY | O_DIRECTORY);
    podmap_t *map = podmap_new(pods_dir, containers_dir);
    struct pod_identity id;
    assert_int_equal(podmap_resolve_pid(map, proc_fd, 42, 0, &id), 0);
    assert_string_equal(id.container, "sidecar");
    assert_int_equal(podmap_resolve_pid(map, proc_fd, 43, 0, &id), -ENOENT); /* gone */
    podmap_destroy(&map);
    close(proc_fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_cgroup_shapes),
        cmocka_unit_test(test_without_containers_dir),
        cmocka_unit_test(test_rescan_rate),
        cmocka_unit_test(test_resolve_pid),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
