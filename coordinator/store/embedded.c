/*
 * A private PostgreSQL cluster under the coordinator's state directory.
 *
 * Layout: <base>/pgdata (data directory), <base>/pgsock (the only place it listens: a Unix
 * socket, listen_addresses=''), <base>/postgres.log. <base> is the state directory, unless the
 * cluster must run as the "postgres" user (we are root) and that user cannot reach the state
 * directory (a clone under /root or a 0700 home); then <base> is
 * /var/lib/vigil-pg/pg-<12 hex of SHA-256(realpath(state_dir))> and <state_dir>/pgdata is a
 * symlink to the data directory, so an operator still finds it.
 *
 * The fallback root is a directory of its own, not the coordinator's default state directory
 * (/var/lib/vigil, private on purpose): it must stay searchable by "postgres". It is made
 * root-owned 0755 explicitly (whatever the umask), and refused when someone else owns it or
 * may write to it; everything below it is postgres-owned 0700.
 *
 * initdb and pg_ctl run in a forked child (as "postgres" when we are root) through execve with
 * a fixed environment: no shell here, and their output is captured so a failure can say why.
 */
#include "embedded.h"

#include "atomicfile.h"
#include "digest.h"
#include "reach.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "roles.h"

#define PG_PORT "5432" /* only part of the socket file's name in our private directory */
#define PG_SOCKET_NAME "/.s.PGSQL." PG_PORT
#define PG_BIN_ROOT "/usr/lib/postgresql"
#define FALLBACK_ROOT "/var/lib/vigil-pg"
#define FALLBACK_ROOT_MODE 0755
#define PG_USER "postgres"
#define OUTPUT_TAIL 1024 /* bytes of a child's output kept for an error message */
#define MAX_GROUPS 64
#define DB_CONNECT_TIMEOUT_MS 30000
/* A postmaster that died is started again after these waits: 1 s, doubling up to 30 s; the
 * backoff starts over once a restarted cluster has stayed up RESTART_STABLE_MS. */
#define RESTART_BACKOFF_FIRST_MS 1000
#define RESTART_BACKOFF_MAX_MS 30000
#define RESTART_STABLE_MS 60000

struct embedded_pg {
    char bin_dir[PATH_MAX];
    char data_dir[PATH_MAX];
    char sock_dir[PATH_MAX];
    char log_path[PATH_MAX];
    char port[16];
    char state_dir[PATH_MAX];          /* the coordinator's: the roles' password files */
    char conninfo[2 * PATH_MAX + 128]; /* the coordinator's role (roles.h) */
    char owner_conninfo[2 * PATH_MAX + 128];

    /* Who runs initdb/pg_ctl: ourselves, or (as root) the postgres user. */
    bool drop_privs;
    uid_t uid;
    gid_t gid;
    gid_t groups[MAX_GROUPS];
    int ngroups;

    /* The children's whole environment. */
    char env_home[PATH_MAX + 8];
    char env_tz[256];
    char *envp[5];

    /* Watching the postmaster (embedded_pg_watch); times are mono_ms(). */
    bool dead; /* found dead, not seen alive since */
    long dead_since_ms;
    long next_restart_ms;    /* no restart before this */
    long restart_backoff_ms; /* the wait after the next restart */
    long restarted_ms;       /* the last restart; 0 = none */
    unsigned long restarts;
};

static void __attribute__((format(printf, 3, 4)))
seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Turns line breaks, tabs and runs of spaces into single spaces, so text fits one log line. */
static char *flatten(char *text)
{
    size_t n = 0;
    for (const char *p = text; *p; p++) {
        bool space = *p == '\n' || *p == '\r' || *p == '\t' || *p == ' ';
        if (!space)
            text[n++] = *p;
        else if (n > 0 && text[n - 1] != ' ')
            text[n++] = ' ';
    }
    while (n > 0 && text[n - 1] == ' ')
        n--;
    text[n] = '\0';
    return text;
}

static int path_join(char *out, size_t len, const char *dir, const char *name)
{
    int n = snprintf(out, len, "%s/%s", dir, name);
    return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

/*
 * pg_ctl hands -o to /bin/sh and the server splits unix_socket_directories on commas, so the
 * directories we name must be made of characters neither of them interprets.
 */
static bool path_is_plain(const char *path)
{
    if (path[0] != '/')
        return false;
    for (const char *p = path; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("/._-+@:=~%", c)))
            return false;
    }
    return true;
}

static bool socket_path_fits(const char *sock_dir)
{
    return strlen(sock_dir) + sizeof(PG_SOCKET_NAME) <= sizeof(((struct sockaddr_un *)0)->sun_path);
}

/* ---- running initdb / pg_ctl ---- */

/* In the forked child: only async-signal-safe calls from here on. */
static int drop_to_cluster_user(const embedded_pg_t *pg)
{
    if (!pg->drop_privs)
        return 0;
    if (setgroups((size_t)pg->ngroups, pg->groups) < 0 || setgid(pg->gid) < 0 ||
        setuid(pg->uid) < 0)
        return -1;
    if (pg->uid != 0 && setuid(0) == 0) /* the drop must not be undoable */
        return -1;
    return 0;
}

static void child_write(const char *text)
{
    ssize_t r = write(STDERR_FILENO, text, strlen(text));
    (void)r;
}

static void __attribute__((noreturn))
child_exec(const embedded_pg_t *pg, char *const argv[], int out_fd)
{
    static const int reset[] = {SIGCHLD, SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1};
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    for (size_t i = 0; i < sizeof(reset) / sizeof(reset[0]); i++)
        sigaction(reset[i], &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0)
        dup2(devnull, STDIN_FILENO);
    dup2(out_fd, STDOUT_FILENO);
    dup2(out_fd, STDERR_FILENO);
    close_range(3, ~0U, 0);

    if (drop_to_cluster_user(pg) < 0) {
        child_write("vigil: could not switch to the " PG_USER " user\n");
        _exit(126);
    }
    if (chdir("/") < 0)
        _exit(126);
    execve(argv[0], argv, pg->envp);
    child_write("vigil: could not execute ");
    child_write(argv[0]);
    child_write("\n");
    _exit(127);
}

/* Appends chunk to tail, keeping only the last cap-1 bytes of everything appended. */
static void keep_tail(char *tail, size_t cap, size_t *used, const char *chunk, size_t n)
{
    if (cap <= 1)
        return;
    size_t room = cap - 1;
    if (n >= room) {
        memcpy(tail, chunk + (n - room), room);
        *used = room;
    } else {
        if (*used + n > room) {
            size_t drop = *used + n - room;
            memmove(tail, tail + drop, *used - drop);
            *used -= drop;
        }
        memcpy(tail + *used, chunk, n);
        *used += n;
    }
    tail[*used] = '\0';
}

/*
 * Runs argv (argv[0] an absolute path) as the cluster's user and waits for it. The tail of its
 * stdout and stderr lands in tail. Returns its exit status (0-255), or a negative errno if it
 * could not be run or was killed by a signal.
 */
static int run_tool(const embedded_pg_t *pg, char *const argv[], char *tail, size_t taillen)
{
    int fds[2];
    size_t used = 0;

    if (taillen > 0)
        tail[0] = '\0';
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return -e;
    }
    if (pid == 0)
        child_exec(pg, argv, fds[1]);

    close(fds[1]);
    for (;;) {
        char chunk[512];
        ssize_t n = read(fds[0], chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        keep_tail(tail, taillen, &used, chunk, (size_t)n);
    }
    close(fds[0]);

    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return -ECANCELED;
}

/* 1 if the cluster's user may search (traverse) path and every directory above it, else 0. */
static int cluster_user_can_search(const embedded_pg_t *pg, const char *path)
{
    struct vg_identity who = {pg->uid, pg->gid, pg->groups, (size_t)pg->ngroups};
    return vg_reach_check(&who, path, X_OK);
}

/* The first directory on path the cluster's user cannot search: see vg_reach_blocking_dir. */
static int first_unsearchable(const embedded_pg_t *pg, const char *path, char *out, size_t len)
{
    struct vg_identity who = {pg->uid, pg->gid, pg->groups, (size_t)pg->ngroups};
    return vg_reach_blocking_dir(&who, path, out, len);
}

/* ---- locating the server and the directories ---- */

static bool file_exists(const char *dir, const char *name)
{
    char path[PATH_MAX];
    return path_join(path, sizeof(path), dir, name) == 0 && access(path, F_OK) == 0;
}

static bool has_server_tools(const char *dir)
{
    static const char *const tools[] = {"initdb", "pg_ctl", "postgres"};
    char path[PATH_MAX];
    for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
        if (path_join(path, sizeof(path), dir, tools[i]) < 0 || access(path, X_OK) < 0)
            return false;
    }
    return true;
}

/* "15" -> 15000, "9.6" -> 9006; -1 if the name is not a version. */
static long version_rank(const char *name)
{
    char *end = NULL;
    errno = 0;
    long major = strtol(name, &end, 10);
    if (errno || end == name || major < 0 || major > 100000)
        return -1;
    long minor = 0;
    if (*end == '.') {
        const char *m = end + 1;
        minor = strtol(m, &end, 10);
        if (errno || end == m || minor < 0 || minor > 999)
            return -1;
    }
    if (*end != '\0')
        return -1;
    return major * 1000 + minor;
}

static int find_bin_dir(embedded_pg_t *pg, const char *configured, char *err, size_t errlen)
{
    if (configured && configured[0]) {
        if (strlen(configured) >= sizeof(pg->bin_dir) || !has_server_tools(configured)) {
            seterr(err, errlen, "store.pg_bin_dir %s: initdb, pg_ctl and postgres not found there",
                   configured);
            return -ENOENT;
        }
        snprintf(pg->bin_dir, sizeof(pg->bin_dir), "%s", configured);
        return 0;
    }

    DIR *dir = opendir(PG_BIN_ROOT);
    long best = -1;
    if (dir) {
        struct dirent *de;
        while ((de = readdir(dir)) != NULL) {
            long rank = version_rank(de->d_name);
            char bin[PATH_MAX];
            if (rank <= best ||
                snprintf(bin, sizeof(bin), PG_BIN_ROOT "/%s/bin", de->d_name) >= (int)sizeof(bin))
                continue;
            if (has_server_tools(bin)) {
                best = rank;
                snprintf(pg->bin_dir, sizeof(pg->bin_dir), "%s", bin);
            }
        }
        closedir(dir);
    }
    if (best < 0) {
        seterr(err, errlen,
               "no PostgreSQL server found under " PG_BIN_ROOT "/*/bin: install the PostgreSQL "
               "server package, set store.pg_bin_dir, or set store.url to an existing database");
        return -ENOENT;
    }
    return 0;
}

static int resolve_user(embedded_pg_t *pg, char *err, size_t errlen)
{
    const char *home;

    pg->drop_privs = geteuid() == 0;
    if (pg->drop_privs) {
        struct passwd *pw = getpwnam(PG_USER);
        if (!pw || pw->pw_uid == 0) {
            seterr(err, errlen,
                   "running as root, the private PostgreSQL cluster must run as the \"" PG_USER
                   "\" user (PostgreSQL refuses root), and there is no such user");
            return -ENOENT;
        }
        pg->uid = pw->pw_uid;
        pg->gid = pw->pw_gid;
        pg->ngroups = MAX_GROUPS;
        if (getgrouplist(pw->pw_name, pw->pw_gid, pg->groups, &pg->ngroups) < 0) {
            pg->groups[0] = pw->pw_gid;
            pg->ngroups = 1;
        }
        home = pw->pw_dir;
    } else {
        pg->uid = geteuid();
        pg->gid = getegid();
        home = getenv("HOME");
    }

    size_t i = 0;
    pg->envp[i++] = "PATH=/usr/bin:/bin";
    pg->envp[i++] = "LC_ALL=C";
    snprintf(pg->env_home, sizeof(pg->env_home), "HOME=%s", home && home[0] ? home : "/");
    pg->envp[i++] = pg->env_home;
    const char *tz = getenv("TZ");
    if (tz && strlen(tz) < sizeof(pg->env_tz) - 4) {
        snprintf(pg->env_tz, sizeof(pg->env_tz), "TZ=%s", tz);
        pg->envp[i++] = pg->env_tz;
    }
    pg->envp[i] = NULL;
    return 0;
}

/*
 * Creates dir unless it exists as a directory and gives it mode 0700 explicitly (not through
 * the umask); as root, hands it to postgres. Opened with O_NOFOLLOW: a directory the postgres
 * user owns must not lead root's chown through a symlink it planted.
 */
static int ensure_dir(const embedded_pg_t *pg, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (mkdir(path, 0700) < 0 && errno != EEXIST) {
        int e = errno;
        seterr(err, errlen, "cannot create %s: %s", path, strerror(e));
        return -e;
    }
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        seterr(err, errlen, "%s: not a directory (%s)", path, strerror(e));
        return -ENOTDIR;
    }
    if (pg->drop_privs && (st.st_uid != pg->uid || st.st_gid != pg->gid) &&
        fchown(fd, pg->uid, pg->gid) < 0) {
        int e = errno;
        close(fd);
        seterr(err, errlen, "cannot give %s to the " PG_USER " user: %s", path, strerror(e));
        return -e;
    }
    if ((st.st_mode & 07777) != 0700 && fchmod(fd, 0700) < 0) {
        int e = errno;
        close(fd);
        seterr(err, errlen, "cannot set mode 0700 on %s: %s", path, strerror(e));
        return -e;
    }
    close(fd);
    return 0;
}

/*
 * The fallback root: root-owned, mode FALLBACK_ROOT_MODE set explicitly, searchable by the
 * cluster's user all the way down. Anything else is one error that says what to do.
 */
static int ensure_fallback_root(const embedded_pg_t *pg, char *err, size_t errlen)
{
    struct stat st;
    if (mkdir(FALLBACK_ROOT, FALLBACK_ROOT_MODE) < 0 && errno != EEXIST) {
        int e = errno;
        seterr(err, errlen,
               "cannot create " FALLBACK_ROOT " for the private PostgreSQL cluster: %s; set "
               "store.url to an existing database, or use a state_dir the " PG_USER
               " user can reach",
               strerror(e));
        return -e;
    }
    int fd = open(FALLBACK_ROOT, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        seterr(err, errlen, FALLBACK_ROOT " is not a directory (%s): remove it", strerror(e));
        return -ENOTDIR;
    }
    if (st.st_uid != 0) {
        close(fd);
        seterr(err, errlen,
               FALLBACK_ROOT " is owned by uid %lu, not root: it holds private clusters that "
                             "root manages, so it must be root's (chown root:root " FALLBACK_ROOT
                             ")",
               (unsigned long)st.st_uid);
        return -EPERM;
    }
    if ((st.st_mode & 07777) != FALLBACK_ROOT_MODE && fchmod(fd, FALLBACK_ROOT_MODE) < 0) {
        int e = errno;
        close(fd);
        seterr(err, errlen, "cannot set mode %04o on " FALLBACK_ROOT ": %s", FALLBACK_ROOT_MODE,
               strerror(e));
        return -e;
    }
    close(fd);

    char blocked[PATH_MAX];
    int r = first_unsearchable(pg, FALLBACK_ROOT, blocked, sizeof(blocked));
    if (r < 0) {
        seterr(err, errlen,
               "cannot check whether the " PG_USER " user can reach " FALLBACK_ROOT ": %s",
               strerror(-r));
        return r;
    }
    if (r > 0) {
        seterr(err, errlen,
               "the " PG_USER " user cannot search %s (it lacks execute permission there), so "
               "the private PostgreSQL cluster can live neither in the state directory nor "
               "in " FALLBACK_ROOT ": chmod o+x %s, or set store.url to an existing database",
               blocked, blocked);
        return -EACCES;
    }
    return 0;
}

/* mkdir -p for the state directory (mode 0700 for what we create). */
static int make_path(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -ENAMETOOLONG;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0700) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static int sha256_hex12(const char *text, char out[13])
{
    uint8_t md[VG_SHA256_LEN];

    vg_sha256(text, strlen(text), md);
    vg_hex(md, 6, out);
    return 0;
}

/* Makes link a symlink to target, replacing a stale symlink or an empty directory. */
static int ensure_symlink(const char *link, const char *target, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(link, &st) == 0) {
        if (S_ISLNK(st.st_mode)) {
            char cur[PATH_MAX];
            ssize_t n = readlink(link, cur, sizeof(cur) - 1);
            if (n >= 0) {
                cur[n] = '\0';
                if (strcmp(cur, target) == 0)
                    return 0;
            }
            if (unlink(link) < 0) {
                int e = errno;
                seterr(err, errlen, "cannot replace symlink %s: %s", link, strerror(e));
                return -e;
            }
        } else if (S_ISDIR(st.st_mode)) {
            if (rmdir(link) < 0) {
                int e = errno;
                seterr(err, errlen,
                       "%s holds a PostgreSQL data directory the " PG_USER
                       " user cannot reach (%s): make every directory above it searchable "
                       "by " PG_USER " (chmod o+x), or move it to %s",
                       link, strerror(e), target);
                return -e;
            }
        } else {
            seterr(err, errlen, "%s exists and is neither a directory nor a symlink", link);
            return -EEXIST;
        }
    } else if (errno != ENOENT) {
        int e = errno;
        seterr(err, errlen, "%s: %s", link, strerror(e));
        return -e;
    }
    if (symlink(target, link) < 0) {
        int e = errno;
        seterr(err, errlen, "cannot create symlink %s -> %s: %s", link, target, strerror(e));
        return -e;
    }
    return 0;
}

/*
 * The cluster's place when the state directory cannot hold it: the one an earlier start linked
 * from <state_dir>/pgdata if the cluster's user can still reach it, else
 * FALLBACK_ROOT/pg-<hash>, linked from there. base receives the directory chosen.
 */
static int choose_fallback(embedded_pg_t *pg, const char *state_real, const char *why, char *base,
                           size_t baselen, char *err, size_t errlen)
{
    char link[PATH_MAX];
    struct stat st;
    int r;

    if (path_join(link, sizeof(link), state_real, "pgdata") < 0) {
        seterr(err, errlen, "state directory path too long: %s", state_real);
        return -ENAMETOOLONG;
    }
    if (lstat(link, &st) == 0 && S_ISLNK(st.st_mode) && realpath(link, pg->data_dir) &&
        path_is_plain(pg->data_dir) && file_exists(pg->data_dir, "PG_VERSION") &&
        cluster_user_can_search(pg, pg->data_dir) == 1) {
        snprintf(base, baselen, "%s", pg->data_dir);
        char *slash = strrchr(base, '/');
        if (slash && slash != base) {
            *slash = '\0';
            vg_log(VG_LOG_INFO,
                   "store: private cluster kept outside the state directory state_dir=%s "
                   "reason=\"%s\" pgdata=%s link=%s",
                   state_real, why, pg->data_dir, link);
            return 0;
        }
    }

    char hex[13];
    r = sha256_hex12(state_real, hex);
    if (r < 0) {
        seterr(err, errlen, "cannot hash the state directory path");
        return r;
    }
    r = ensure_fallback_root(pg, err, errlen);
    if (r < 0)
        return r;
    snprintf(base, baselen, FALLBACK_ROOT "/pg-%s", hex);
    r = ensure_dir(pg, base, err, errlen);
    if (r < 0)
        return r;
    if (path_join(pg->data_dir, sizeof(pg->data_dir), base, "pgdata") < 0)
        return -ENAMETOOLONG;
    r = ensure_symlink(link, pg->data_dir, err, errlen);
    if (r < 0)
        return r;
    /* Best effort: the log is found beside the symlink too. */
    char log_link[PATH_MAX], log_target[PATH_MAX];
    if (path_join(log_link, sizeof(log_link), state_real, "postgres.log") == 0 &&
        path_join(log_target, sizeof(log_target), base, "postgres.log") == 0) {
        if (lstat(log_link, &st) < 0 || S_ISLNK(st.st_mode)) {
            char ignored[256];
            ensure_symlink(log_link, log_target, ignored, sizeof(ignored));
        }
    }
    vg_log(VG_LOG_INFO,
           "store: private cluster placed outside the state directory state_dir=%s "
           "reason=\"%s\" pgdata=%s link=%s",
           state_real, why, pg->data_dir, link);
    return 0;
}

/*
 * Decides where data, socket and log live (see the top of this file) and creates the
 * directories. state_real is the resolved state directory.
 */
static int choose_dirs(embedded_pg_t *pg, const char *state_real, char *err, size_t errlen)
{
    char base[PATH_MAX];
    char sock[PATH_MAX];
    char why_buf[PATH_MAX + 64];
    const char *why = NULL;
    int r;

    if (!path_is_plain(state_real)) {
        why = "its path contains characters that PostgreSQL's options cannot carry";
    } else if (path_join(sock, sizeof(sock), state_real, "pgsock") < 0 || !socket_path_fits(sock)) {
        why = "its path is too long for a Unix socket";
    } else if (pg->drop_privs) {
        r = cluster_user_can_search(pg, state_real);
        if (r < 0) {
            seterr(err, errlen, "cannot check whether the " PG_USER " user can reach %s: %s",
                   state_real, strerror(-r));
            return r;
        }
        if (r == 0) {
            char blocked[PATH_MAX] = "";
            if (first_unsearchable(pg, state_real, blocked, sizeof(blocked)) <= 0)
                snprintf(blocked, sizeof(blocked), "%s", state_real);
            snprintf(why_buf, sizeof(why_buf), "the " PG_USER " user cannot search %s", blocked);
            why = why_buf;
        }
    }

    if (!why) {
        snprintf(base, sizeof(base), "%s", state_real);
        char link[PATH_MAX];
        struct stat st;
        if (path_join(link, sizeof(link), base, "pgdata") < 0) {
            seterr(err, errlen, "state directory path too long: %s", state_real);
            return -ENAMETOOLONG;
        }
        /* A symlink left by an earlier fallback keeps pointing at the cluster it made. */
        if (lstat(link, &st) == 0 && S_ISLNK(st.st_mode)) {
            if (!realpath(link, pg->data_dir) || !path_is_plain(pg->data_dir)) {
                seterr(err, errlen, "%s: a symlink to an unusable data directory", link);
                return -ENOENT;
            }
        } else {
            snprintf(pg->data_dir, sizeof(pg->data_dir), "%s", link);
        }
    } else {
        if (!pg->drop_privs) {
            seterr(err, errlen, "state directory %s cannot hold the private PostgreSQL cluster: %s",
                   state_real, why);
            return -EINVAL;
        }
        r = choose_fallback(pg, state_real, why, base, sizeof(base), err, errlen);
        if (r < 0)
            return r;
    }

    if (path_join(pg->sock_dir, sizeof(pg->sock_dir), base, "pgsock") < 0 ||
        path_join(pg->log_path, sizeof(pg->log_path), base, "postgres.log") < 0) {
        seterr(err, errlen, "state directory path too long: %s", base);
        return -ENAMETOOLONG;
    }
    r = ensure_dir(pg, pg->data_dir, err, errlen);
    if (r < 0)
        return r;
    r = ensure_dir(pg, pg->sock_dir, err, errlen);
    if (r < 0)
        return r;

    /* pg_ctl (as postgres) appends to the log; it may not be able to create it in base. */
    int fd = open(pg->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int e = errno;
        seterr(err, errlen, "cannot open %s: %s", pg->log_path, strerror(e));
        return -e;
    }
    if (pg->drop_privs && fchown(fd, pg->uid, pg->gid) < 0) {
        int e = errno;
        close(fd);
        seterr(err, errlen, "cannot give %s to the " PG_USER " user: %s", pg->log_path,
               strerror(e));
        return -e;
    }
    close(fd);
    return 0;
}

/* ---- the cluster ---- */

/* The last bytes of the server log, for an error message. */
static void read_log_tail(const char *path, char *out, size_t len)
{
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > (off_t)(len - 1) ? size - (off_t)(len - 1) : 0;
    ssize_t n = pread(fd, out, len - 1, from);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
}

static int initdb(const embedded_pg_t *pg, char *err, size_t errlen)
{
    char tool[PATH_MAX];
    char tail[OUTPUT_TAIL];

    if (path_join(tool, sizeof(tool), pg->bin_dir, "initdb") < 0)
        return -ENAMETOOLONG;
    /* write_hba replaces the authentication before the first start. */
    char *argv[] = {tool,
                    "-D",
                    (char *)pg->data_dir,
                    "-U",
                    ROLES_SUPERUSER,
                    "--auth-local=peer",
                    "--auth-host=reject",
                    "-E",
                    "UTF8",
                    "--no-instructions",
                    NULL};
    vg_log(VG_LOG_INFO, "store: creating private cluster pgdata=%s", pg->data_dir);
    int r = run_tool(pg, argv, tail, sizeof(tail));
    if (r != 0) {
        seterr(err, errlen, "initdb %s failed (%s %d): %s", pg->data_dir, r < 0 ? "error" : "exit",
               r < 0 ? -r : r, flatten(tail));
        return -EIO;
    }
    return 0;
}

/* pg_ctl status: 1 running, 0 not. */
static int cluster_running(const embedded_pg_t *pg)
{
    char tool[PATH_MAX];
    char tail[256];
    if (path_join(tool, sizeof(tool), pg->bin_dir, "pg_ctl") < 0)
        return -ENAMETOOLONG;
    char *argv[] = {tool, "-D", (char *)pg->data_dir, "status", NULL};
    int r = run_tool(pg, argv, tail, sizeof(tail));
    if (r < 0)
        return r;
    return r == 0;
}

/*
 * An adopted cluster may have been started with other settings: take its socket directory
 * and port from postmaster.pid (lines 4 and 5) when they are usable.
 */
static void adopt_socket(embedded_pg_t *pg)
{
    char path[PATH_MAX];
    if (path_join(path, sizeof(path), pg->data_dir, "postmaster.pid") < 0)
        return;
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    char line[PATH_MAX];
    char sock[PATH_MAX] = "";
    long port = 0;
    for (int i = 1; i <= 5 && fgets(line, sizeof(line), f); i++) {
        line[strcspn(line, "\n")] = '\0';
        if (i == 4) {
            char *end = NULL;
            port = strtol(line, &end, 10);
            if (end == line || *end != '\0')
                port = 0;
        } else if (i == 5) {
            snprintf(sock, sizeof(sock), "%s", line);
        }
    }
    fclose(f);
    if (port > 0 && port < 65536 && path_is_plain(sock) && socket_path_fits(sock)) {
        snprintf(pg->port, sizeof(pg->port), "%ld", port);
        snprintf(pg->sock_dir, sizeof(pg->sock_dir), "%s", sock);
    }
}

/* wait: until it accepts connections (start-up); otherwise pg_ctl returns once the server is
 * forked (a restart from the main loop, which must not wait on crash recovery). */
static int pg_start(const embedded_pg_t *pg, bool wait, char *err, size_t errlen)
{
    char tool[PATH_MAX];
    char opts[PATH_MAX + 256];
    char tail[OUTPUT_TAIL];

    if (path_join(tool, sizeof(tool), pg->bin_dir, "pg_ctl") < 0)
        return -ENAMETOOLONG;
    /* One string: pg_ctl passes it to the server's command line (through /bin/sh). The WAL
     * writer flushes every 10 ms instead of 200: a batch of evidence chunks is megabytes of
     * WAL, and its COMMIT then waits for the last few milliseconds of it instead of all of it
     * (docs/operations.md, "PostgreSQL settings"). */
    snprintf(opts, sizeof(opts),
             "-c listen_addresses='' -c unix_socket_directories='%s' -c port=%s -c fsync=on"
             " -c wal_writer_delay=10ms -c wal_writer_flush_after=256kB",
             pg->sock_dir, pg->port);
    char *argv[] = {tool,    "-D", (char *)pg->data_dir, "-l", (char *)pg->log_path,
                    "-o",    opts, wait ? "-w" : "-W",   "-t", "60",
                    "start", NULL};
    int r = run_tool(pg, argv, tail, sizeof(tail));
    if (r != 0) {
        char log_tail[600];
        read_log_tail(pg->log_path, log_tail, sizeof(log_tail));
        seterr(err, errlen, "pg_ctl start %s failed (%s %d): %s; %s: %s", pg->data_dir,
               r < 0 ? "error" : "exit", r < 0 ? -r : r, flatten(tail), pg->log_path,
               flatten(log_tail));
        return -EIO;
    }
    vg_log(VG_LOG_INFO, "store: private cluster %s pgdata=%s socket=%s",
           wait ? "started" : "starting", pg->data_dir, pg->sock_dir);
    return 0;
}

static void pg_stop(const embedded_pg_t *pg)
{
    char tool[PATH_MAX];
    char tail[OUTPUT_TAIL];

    if (path_join(tool, sizeof(tool), pg->bin_dir, "pg_ctl") < 0)
        return;
    char *argv[] = {tool, "-D", (char *)pg->data_dir, "-m", "fast", "-w", "-t", "60", "stop", NULL};
    int r = run_tool(pg, argv, tail, sizeof(tail));
    if (r != 0)
        vg_log(VG_LOG_WARN, "store: pg_ctl stop failed pgdata=%s status=%d output=\"%s\"",
               pg->data_dir, r, flatten(tail));
    else
        vg_log(VG_LOG_INFO, "store: private cluster stopped pgdata=%s", pg->data_dir);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A user name pg_ident.conf can hold unquoted. */
static bool name_is_plain(const char *name)
{
    return name[0] && strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "0123456789._-") == strlen(name);
}

static int write_conf(const embedded_pg_t *pg, const char *name, const char *text, char *err,
                      size_t errlen)
{
    char path[PATH_MAX];
    int r = path_join(path, sizeof(path), pg->data_dir, name);
    if (r == 0)
        r = vg_file_replace(path, text, strlen(text), 0600, true);
    /* As root the file must stay the server's (it reads it as "postgres"). */
    if (r == 0 && pg->drop_privs && chown(path, pg->uid, pg->gid) < 0)
        r = -errno;
    if (r < 0)
        seterr(err, errlen, "%s: %s", path, strerror(-r));
    return r;
}

/*
 * Who may log in, written at every start (an older cluster trusted every local connection): the
 * superuser only as the OS user of the coordinator or of the server (peer), every other role,
 * the coordinator's two included, by password (SCRAM). Nothing listens on TCP.
 */
static int write_hba(const embedded_pg_t *pg, char *err, size_t errlen)
{
    const struct passwd *pw = getpwuid(geteuid());
    char me[64], server[64];
    snprintf(me, sizeof(me), "%s", pw ? pw->pw_name : "");
    pw = getpwuid(pg->uid);
    snprintf(server, sizeof(server), "%s", pw ? pw->pw_name : "");
    if (!name_is_plain(me) || !name_is_plain(server)) {
        seterr(err, errlen,
               "private cluster: the coordinator's or the server's OS user has no plain name "
               "(uid %d, %d): the superuser's peer login needs one",
               (int)geteuid(), (int)pg->uid);
        return -EINVAL;
    }
    static const char hba[] =
        "# Written by vigil-coordinator at every start: edits are lost (docs/operations.md,\n"
        "# \"Database roles\").\n"
        "# TYPE  DATABASE USER     METHOD\n"
        "local   all      " ROLES_SUPERUSER "    peer map=vigil\n"
        "local   all      all      scram-sha-256\n";
    char ident[256];
    snprintf(ident, sizeof(ident),
             "# Written by vigil-coordinator at every start: the OS users that may log in as the\n"
             "# superuser " ROLES_SUPERUSER ".\n"
             "vigil %s " ROLES_SUPERUSER "\n"
             "%s%s%s",
             me, strcmp(me, server) ? "vigil " : "", strcmp(me, server) ? server : "",
             strcmp(me, server) ? " " ROLES_SUPERUSER "\n" : "");
    if (write_conf(pg, "pg_hba.conf", hba, err, errlen) < 0 ||
        write_conf(pg, "pg_ident.conf", ident, err, errlen) < 0)
        return -EIO;
    return 0;
}

/* A superuser connection to dbname, waiting for a cluster that may still be starting. */
static PGconn *connect_superuser(const embedded_pg_t *pg, const char *dbname, char *err,
                                 size_t errlen)
{
    char conninfo[PATH_MAX + 64];
    snprintf(conninfo, sizeof(conninfo), "host=%s port=%s user=" ROLES_SUPERUSER " dbname=%s",
             pg->sock_dir, pg->port, dbname);

    /* pg_ctl -w has waited for startup, but an adopted cluster may still be starting. */
    long deadline = mono_ms() + DB_CONNECT_TIMEOUT_MS;
    long backoff = 100;
    for (;;) {
        PGconn *conn = PQconnectdb(conninfo);
        if (PQstatus(conn) == CONNECTION_OK)
            return conn;
        if (mono_ms() + backoff > deadline) {
            char msg[512];
            snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
            seterr(err, errlen, "cannot connect to the private cluster at %s: %s", pg->sock_dir,
                   flatten(msg));
            PQfinish(conn);
            return NULL;
        }
        PQfinish(conn);
        sleep_ms(backoff);
        backoff = backoff * 2 > 1000 ? 1000 : backoff * 2;
    }
}

static int exec_or_err(PGconn *conn, const char *sql, const char *what, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    /* 42P04 duplicate_database: another coordinator got there first. */
    int r = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && !(state && !strcmp(state, "42P04"))) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
        seterr(err, errlen, "private cluster: %s: %s", what, flatten(msg));
        r = -EIO;
    }
    PQclear(res);
    return r;
}

/*
 * The database and its roles (roles.h), as the superuser: both logins with their passwords, the
 * "vigil" database owned by the owner role, and everything in it too (a cluster made before the
 * roles existed). Then the server reads the pg_hba.conf write_hba wrote (an adopted cluster
 * still had the old one).
 */
static int prepare_database(embedded_pg_t *pg, char *err, size_t errlen)
{
    PGconn *conn = connect_superuser(pg, "postgres", err, errlen);
    if (!conn)
        return -EIO;
    int r = roles_embedded_create(conn, pg->state_dir, pg->sock_dir, pg->port, pg->owner_conninfo,
                                  sizeof(pg->owner_conninfo), pg->conninfo, sizeof(pg->conninfo),
                                  err, errlen);
    PGresult *res =
        r == 0 ? PQexec(conn, "SELECT 1 FROM pg_database WHERE datname = 'vigil'") : NULL;
    if (r == 0 && PQresultStatus(res) != PGRES_TUPLES_OK) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
        seterr(err, errlen, "private cluster: %s", flatten(msg));
        r = -EIO;
    } else if (r == 0 && PQntuples(res) == 0) {
        r = exec_or_err(conn, "CREATE DATABASE vigil OWNER " ROLES_OWNER, "CREATE DATABASE vigil",
                        err, errlen);
        if (r == 0)
            vg_log(VG_LOG_INFO, "store: created database dbname=vigil socket=%s", pg->sock_dir);
    }
    PQclear(res);
    if (r == 0)
        r = exec_or_err(conn, "SELECT pg_reload_conf()", "reload", err, errlen);
    PQfinish(conn);
    if (r < 0)
        return r;

    conn = connect_superuser(pg, "vigil", err, errlen);
    if (!conn)
        return -EIO;
    r = roles_embedded_take_ownership(conn, err, errlen);
    PQfinish(conn);
    return r;
}

embedded_pg_t *embedded_pg_start(const char *state_dir, const char *pg_bin_dir, char *err,
                                 size_t errlen)
{
    char state_real[PATH_MAX];
    int r;

    if (!state_dir || !state_dir[0]) {
        seterr(err, errlen, "no state directory for the private PostgreSQL cluster");
        return NULL;
    }
    embedded_pg_t *pg = calloc(1, sizeof(*pg));
    if (!pg) {
        seterr(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(pg->port, sizeof(pg->port), "%s", PG_PORT);

    if (find_bin_dir(pg, pg_bin_dir, err, errlen) < 0 || resolve_user(pg, err, errlen) < 0)
        goto err_free;
    r = make_path(state_dir);
    if (r < 0) {
        seterr(err, errlen, "cannot create state directory %s: %s", state_dir, strerror(-r));
        goto err_free;
    }
    if (!realpath(state_dir, state_real)) {
        seterr(err, errlen, "state directory %s: %s", state_dir, strerror(errno));
        goto err_free;
    }
    if (choose_dirs(pg, state_real, err, errlen) < 0)
        goto err_free;
    snprintf(pg->state_dir, sizeof(pg->state_dir), "%s", state_real);

    if (!file_exists(pg->data_dir, "PG_VERSION") && initdb(pg, err, errlen) < 0)
        goto err_free;

    if (write_hba(pg, err, errlen) < 0)
        goto err_free;
    r = file_exists(pg->data_dir, "postmaster.pid") ? cluster_running(pg) : 0;
    if (r > 0) {
        adopt_socket(pg);
        vg_log(VG_LOG_INFO, "store: adopting running cluster pgdata=%s socket=%s", pg->data_dir,
               pg->sock_dir);
    } else if (pg_start(pg, true, err, errlen) < 0) {
        goto err_free;
    }

    if (prepare_database(pg, err, errlen) < 0)
        goto err_stop;
    return pg;

err_stop:
    pg_stop(pg);
err_free:
    free(pg);
    return NULL;
}

/* A dead process whose parent has not reaped it yet. The postmaster's parent is whoever adopted
 * it when pg_ctl exited: init, or the coordinator itself when it is a container's pid 1. */
static bool is_zombie(pid_t pid)
{
    char path[64], stat[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false; /* no /proc: trust kill(pid, 0) */
    size_t n = fread(stat, 1, sizeof(stat) - 1, f);
    fclose(f);
    stat[n] = '\0';
    const char *end = strrchr(stat, ')'); /* comm may hold anything, ")" included */
    return end && (end[1] == ' ') && (end[2] == 'Z' || end[2] == 'X');
}

/* The postmaster's pid from line 1 of postmaster.pid, while that process exists: two small reads,
 * cheap enough for every second. 0 when there is no postmaster. */
static pid_t postmaster_pid(const embedded_pg_t *pg)
{
    char path[PATH_MAX];
    char line[32];
    if (path_join(path, sizeof(path), pg->data_dir, "postmaster.pid") < 0)
        return 0;
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    bool got = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    char *end = NULL;
    long pid = got ? strtol(line, &end, 10) : 0;
    if (pid <= 0 || pid > INT_MAX || end == line || (*end != '\n' && *end != '\0'))
        return 0;
    /* EPERM: alive, under another user (we are not root and it is not ours). */
    if (kill((pid_t)pid, 0) < 0 && errno != EPERM)
        return 0;
    /* A zombie still holds its pid, and PostgreSQL will not start while the pid in its lock file
     * exists: reap it if it is ours (ECHILD otherwise), else wait for init to. */
    if (is_zombie((pid_t)pid) && waitpid((pid_t)pid, NULL, WNOHANG) == (pid_t)pid)
        return 0;
    return (pid_t)pid;
}

int embedded_pg_watch(embedded_pg_t *self)
{
    if (!self)
        return 0;
    long now = mono_ms();
    pid_t pid = postmaster_pid(self);
    if (pid > 0) {
        if (self->dead)
            vg_log(VG_LOG_INFO,
                   "store: private cluster running again pid=%d after=%.1fs restarts=%lu", (int)pid,
                   (double)(now - self->dead_since_ms) / 1000.0, self->restarts);
        self->dead = false;
        if (self->restarted_ms && now - self->restarted_ms >= RESTART_STABLE_MS)
            self->restart_backoff_ms = RESTART_BACKOFF_FIRST_MS;
        return 0;
    }
    if (!self->dead) {
        self->dead = true;
        self->dead_since_ms = now;
        vg_log(VG_LOG_WARN, "store: private cluster died pgdata=%s: starting it again",
               self->data_dir);
    }
    if (now < self->next_restart_ms)
        return 0;
    if (self->restart_backoff_ms < RESTART_BACKOFF_FIRST_MS)
        self->restart_backoff_ms = RESTART_BACKOFF_FIRST_MS;
    self->next_restart_ms = now + self->restart_backoff_ms;
    self->restart_backoff_ms = self->restart_backoff_ms * 2 > RESTART_BACKOFF_MAX_MS
                                   ? RESTART_BACKOFF_MAX_MS
                                   : self->restart_backoff_ms * 2;
    self->restarted_ms = now;
    char err[1024];
    if (pg_start(self, false, err, sizeof(err)) < 0) {
        vg_log(VG_LOG_WARN, "store: private cluster restart failed next_in=%lds error=\"%s\"",
               (self->next_restart_ms - now) / 1000, err);
        return -EIO;
    }
    self->restarts++;
    return 1;
}

const char *embedded_pg_conninfo(const embedded_pg_t *self)
{
    return self ? self->conninfo : NULL;
}

const char *embedded_pg_owner_conninfo(const embedded_pg_t *self)
{
    return self ? self->owner_conninfo : NULL;
}

void embedded_pg_stop(embedded_pg_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pg_stop(*self_p);
    free(*self_p);
    *self_p = NULL;
}
