/*
 * Pure parsing for the log collector; see logparse.h for the contract of each piece.
 * Every scan here is bounded by the caller's length, never by a NUL.
 */
#include "logparse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ---- Small helpers ---------------------------------------------------------------------- */

struct span {
    const char *p;
    size_t n;
};

struct cursor {
    const char *p;
    const char *end;
};

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* All of p[0..n) decimal digits, 1..20 of them, value <= max. */
static bool parse_u64(const char *p, size_t n, uint64_t max, uint64_t *ret)
{
    uint64_t v = 0;

    if (n == 0 || n > 20)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(p[i]))
            return false;
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (v > max)
        return false;
    *ret = v;
    return true;
}

/* Copies s into buf (size >= 1), truncating; returns whether it was truncated. */
static bool copy_bounded(char *buf, size_t size, const char *s, size_t n)
{
    bool truncated = n >= size;

    if (truncated)
        n = size - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return truncated;
}

/* Length of p[0..n) up to the first NUL. */
static size_t until_nul(const char *p, size_t n)
{
    const char *nul = memchr(p, '\0', n);
    return nul ? (size_t)(nul - p) : n;
}

/* Validates an IPv4 or IPv6 address given as (p, n); fills buf (LOGPARSE_ADDR_MAX). */
static bool parse_addr(const char *p, size_t n, char buf[LOGPARSE_ADDR_MAX], int *ret_family)
{
    unsigned char bin[16];

    if (n == 0 || n >= LOGPARSE_ADDR_MAX || memchr(p, '\0', n))
        return false;
    memcpy(buf, p, n);
    buf[n] = '\0';
    if (inet_pton(AF_INET, buf, bin) == 1) {
        *ret_family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, buf, bin) == 1) {
        *ret_family = AF_INET6;
        return true;
    }
    return false;
}

static bool eat(struct cursor *c, char ch)
{
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

/* A non-empty run of bytes other than ' '. */
static bool take_token(struct cursor *c, struct span *ret)
{
    const char *start = c->p;

    while (c->p < c->end && *c->p != ' ')
        c->p++;
    if (c->p == start)
        return false;
    ret->p = start;
    ret->n = (size_t)(c->p - start);
    return true;
}

/* A "..." field in which a backslash escapes the next byte; ret is the inside, as logged. */
static bool take_quoted(struct cursor *c, struct span *ret)
{
    if (!eat(c, '"'))
        return false;
    for (const char *q = c->p; q < c->end; q++) {
        if (*q == '\\') {
            if (c->end - q < 2)
                return false;
            q++;
        } else if (*q == '"') {
            ret->p = c->p;
            ret->n = (size_t)(q - c->p);
            c->p = q + 1;
            return true;
        }
    }
    return false;
}

/* ---- Access logs ------------------------------------------------------------------------ */

#define TIME_LEN 26 /* dd/Mon/yyyy:HH:MM:SS +zzzz */

static bool two_digits_max(const char *p, int max)
{
    return is_digit(p[0]) && is_digit(p[1]) && (p[0] - '0') * 10 + (p[1] - '0') <= max;
}

static bool valid_time(const char *p)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    bool month_ok = false;

    for (size_t m = 0; m < 12; m++)
        if (memcmp(p + 3, months + 3 * m, 3) == 0)
            month_ok = true;
    return two_digits_max(p, 31) && p[2] == '/' && month_ok && p[6] == '/' && is_digit(p[7]) &&
           is_digit(p[8]) && is_digit(p[9]) && is_digit(p[10]) && p[11] == ':' &&
           two_digits_max(p + 12, 23) && p[14] == ':' && two_digits_max(p + 15, 59) &&
           p[17] == ':' && two_digits_max(p + 18, 60) && p[20] == ' ' &&
           (p[21] == '+' || p[21] == '-') && is_digit(p[22]) && is_digit(p[23]) &&
           is_digit(p[24]) && is_digit(p[25]);
}

/* Finds " [TIME]" at or after from + 1 (USER is non-empty); returns the ' ' or NULL. */
static const char *find_time(const char *from, const char *end)
{
    if (end - from < TIME_LEN + 4)
        return NULL;
    for (const char *q = from + 1; end - q >= TIME_LEN + 3; q++) {
        q = memchr(q, ' ', (size_t)(end - q) - (TIME_LEN + 2));
        if (!q)
            return NULL;
        if (q[1] == '[' && q[TIME_LEN + 2] == ']' && valid_time(q + 2))
            return q;
    }
    return NULL;
}

/* RFC 9110 tchar. */
static bool is_tchar(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || is_digit(ch) ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* "METHOD TARGET[ HTTP/x]" into ret; false leaves method/path alone. */
static bool parse_request(struct span req, struct logparse_access *ret)
{
    struct cursor c = {req.p, req.p + req.n};
    struct span method, target, proto;

    if (!take_token(&c, &method) || !eat(&c, ' ') || !take_token(&c, &target))
        return false;
    if (c.p < c.end) {
        if (!eat(&c, ' ') || !take_token(&c, &proto) || c.p != c.end || proto.n < 5 ||
            memcmp(proto.p, "HTTP/", 5) != 0)
            return false;
    }
    if (method.n >= LOGPARSE_METHOD_MAX)
        return false;
    for (size_t i = 0; i < method.n; i++)
        if (!is_tchar(method.p[i]))
            return false;
    copy_bounded(ret->method, sizeof(ret->method), method.p, method.n);
    ret->path_truncated = copy_bounded(ret->path, sizeof(ret->path), target.p, target.n);
    return true;
}

/* SECONDS[.FRACTION] -> ms, rounded. */
static bool parse_seconds_ms(struct span s, int64_t *ret_ms)
{
    const char *dot = memchr(s.p, '.', s.n);
    size_t int_len = dot ? (size_t)(dot - s.p) : s.n;
    uint64_t secs, frac = 0;

    if (int_len > 9 || !parse_u64(s.p, int_len, UINT64_MAX, &secs))
        return false;
    if (dot) {
        size_t frac_len = s.n - int_len - 1;
        uint64_t scale = 1;
        if (frac_len == 0 || frac_len > 9 || !parse_u64(dot + 1, frac_len, UINT64_MAX, &frac))
            return false;
        for (size_t i = 0; i < frac_len; i++)
            scale *= 10;
        frac = (frac * 1000 + scale / 2) / scale;
    }
    *ret_ms = (int64_t)(secs * 1000 + frac);
    return true;
}

int logparse_access(const char *line, size_t len, struct logparse_access *ret)
{
    struct logparse_access out = {.request_time_ms = -1};
    struct span addr, ident, req, status, bytes, quoted, rt;
    struct cursor c;
    const char *time_sp;
    uint64_t v;

    if (!line || !ret)
        return -EINVAL;
    if (len > 0 && line[len - 1] == '\n')
        len--;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (memchr(line, '\0', len) || memchr(line, '\n', len))
        return -EINVAL;
    c.p = line;
    c.end = line + len;

    if (!take_token(&c, &addr) || !parse_addr(addr.p, addr.n, out.addr, &out.family))
        return -EINVAL;
    if (!eat(&c, ' ') || !take_token(&c, &ident) || !eat(&c, ' '))
        return -EINVAL;
    time_sp = find_time(c.p, c.end);
    if (!time_sp)
        return -EINVAL;
    c.p = time_sp + TIME_LEN + 3;

    if (!eat(&c, ' ') || !take_quoted(&c, &req))
        return -EINVAL;
    if (!eat(&c, ' ') || !take_token(&c, &status) || status.n != 3 ||
        !parse_u64(status.p, status.n, 599, &v) || v < 100)
        return -EINVAL;
    out.status = (int)v;
    if (!eat(&c, ' ') || !take_token(&c, &bytes))
        return -EINVAL;
    if (bytes.n == 1 && bytes.p[0] == '-')
        out.bytes = 0;
    else if (!parse_u64(bytes.p, bytes.n, UINT64_MAX, &out.bytes))
        return -EINVAL;

    if (c.p < c.end) {
        if (!eat(&c, ' '))
            return -EINVAL;
        if (c.p < c.end && *c.p == '"') {
            /* combined: referer and user agent; nginx "main" adds one more */
            if (!take_quoted(&c, &quoted) || !eat(&c, ' ') || !take_quoted(&c, &quoted))
                return -EINVAL;
            if (c.end - c.p >= 2 && c.p[0] == ' ' && c.p[1] == '"') {
                c.p++;
                if (!take_quoted(&c, &quoted))
                    return -EINVAL;
            }
            if (c.p < c.end && !eat(&c, ' '))
                return -EINVAL;
        }
        if (c.p < c.end) {
            if (!take_token(&c, &rt) || c.p != c.end || !parse_seconds_ms(rt, &out.request_time_ms))
                return -EINVAL;
        } else if (c.p[-1] == ' ') {
            return -EINVAL; /* trailing space */
        }
    }

    out.request_ok = parse_request(req, &out);
    *ret = out;
    return 0;
}

int logparse_status_class(int status)
{
    if (status < 100 || status > 599)
        return -EINVAL;
    return status / 100;
}

/* ---- Kernel messages -------------------------------------------------------------------- */

#define KMSG_HEADER_MAX 256

/* Digits up to sep; advances past sep. */
static bool take_number(struct cursor *c, char sep, uint64_t max, uint64_t *ret)
{
    const char *start = c->p;

    while (c->p < c->end && is_digit(*c->p))
        c->p++;
    if (!parse_u64(start, (size_t)(c->p - start), max, ret))
        return false;
    return eat(c, sep);
}

int logparse_kmsg_record(const char *rec, size_t len, struct logparse_kmsg *ret)
{
    struct logparse_kmsg out = {0};
    size_t header_len = len < KMSG_HEADER_MAX ? len : KMSG_HEADER_MAX;
    const char *semi, *nl;
    struct cursor c;
    uint64_t prio;

    if (!rec || !ret)
        return -EINVAL;
    semi = memchr(rec, ';', header_len);
    if (!semi || memchr(rec, '\0', (size_t)(semi - rec)) || memchr(rec, '\n', (size_t)(semi - rec)))
        return -EINVAL;
    c.p = rec;
    c.end = semi + 1;
    if (!take_number(&c, ',', INT_MAX, &prio) || !take_number(&c, ',', UINT64_MAX, &out.seq) ||
        !take_number(&c, ',', UINT64_MAX, &out.usec))
        return -EINVAL;
    if (c.end - c.p < 2 || c.p[0] <= ' ' || c.p[0] > '~' || c.p[0] == ',' || c.p[0] == ';' ||
        (c.p[1] != ',' && c.p[1] != ';'))
        return -EINVAL;
    out.flag = c.p[0];
    out.facility = (int)(prio >> 3);
    out.level = (int)(prio & 7);

    out.msg = semi + 1;
    nl = memchr(out.msg, '\n', len - (size_t)(out.msg - rec));
    out.msg_len = nl ? (size_t)(nl - out.msg) : len - (size_t)(out.msg - rec);
    if (memchr(out.msg, '\0', out.msg_len))
        return -EINVAL;

    /* dictionary: every further line starts with a space */
    for (const char *p = nl ? nl + 1 : rec + len; p < rec + len;) {
        if (*p != ' ')
            return -EINVAL;
        const char *next = memchr(p, '\n', (size_t)(rec + len - p));
        p = next ? next + 1 : rec + len;
    }
    *ret = out;
    return 0;
}

static bool ends_with(const char *start, const char *at, const char *suffix)
{
    size_t n = strlen(suffix);
    return (size_t)(at - start) >= n && memcmp(at - n, suffix, n) == 0;
}

static bool oom_prefix_ok(const char *msg, const char *at, bool *ret_memcg)
{
    *ret_memcg = false;
    if (at == msg || ends_with(msg, at, "] ") || ends_with(msg, at, "kernel: "))
        return true;
    if (ends_with(msg, at, "Out of memory: "))
        return true;
    if (ends_with(msg, at, "out of memory: ")) {
        *ret_memcg = ends_with(msg, at, "Memory cgroup out of memory: ");
        return true;
    }
    return false;
}

/* "PID (COMM)" followed by ' ', ',' or the end. */
static bool parse_pid_comm(const char *p, const char *end, struct logparse_oom *ret)
{
    const char *start = p;
    uint64_t pid;
    size_t reach, close = SIZE_MAX;

    while (p < end && is_digit(*p))
        p++;
    if (!parse_u64(start, (size_t)(p - start), INT_MAX, &pid) || pid == 0)
        return false;
    if (end - p < 3 || p[0] != ' ' || p[1] != '(')
        return false;
    p += 2;
    reach = (size_t)(end - p);
    if (reach > LOGPARSE_COMM_MAX)
        reach = LOGPARSE_COMM_MAX;
    for (size_t i = 0; i < reach; i++)
        if (p[i] == ')' && (p + i + 1 == end || p[i + 1] == ' ' || p[i + 1] == ','))
            close = i;
    if (close == SIZE_MAX)
        return false;
    ret->pid = (int)pid;
    copy_bounded(ret->comm, sizeof(ret->comm), p, close);
    return true;
}

bool logparse_oom_kill(const char *msg, size_t len, struct logparse_oom *ret)
{
    static const char marker[] = "Killed process ";
    const size_t mlen = sizeof(marker) - 1;
    const char *end, *p;

    if (!msg || !ret)
        return false;
    len = until_nul(msg, len);
    end = msg + len;
    for (p = msg; (size_t)(end - p) >= mlen; p++) {
        struct logparse_oom out = {0};
        p = memmem(p, (size_t)(end - p), marker, mlen);
        if (!p)
            return false;
        if (oom_prefix_ok(msg, p, &out.memcg) && parse_pid_comm(p + mlen, end, &out)) {
            *ret = out;
            return true;
        }
    }
    return false;
}

/* ---- Authentication failures ------------------------------------------------------------ */

/* First occurrence of marker that starts the line or follows ": " or "[ ". */
static const char *find_marker(const char *line, size_t len, const char *marker)
{
    size_t mlen = strlen(marker);
    const char *end = line + len;

    for (const char *p = line; (size_t)(end - p) >= mlen; p++) {
        p = memmem(p, (size_t)(end - p), marker, mlen);
        if (!p)
            return NULL;
        if (p == line || ends_with(line, p, ": ") || ends_with(line, p, "[ "))
            return p + mlen;
    }
    return NULL;
}

static const char *find_last(const char *from, const char *end, const char *needle)
{
    size_t n = strlen(needle);
    const char *last = NULL;

    for (const char *p = from; (size_t)(end - p) >= n; p++) {
        p = memmem(p, (size_t)(end - p), needle, n);
        if (!p)
            break;
        last = p;
    }
    return last;
}

/* "ADDR[ port N[ ...]]" up to end; port required unless port_optional. */
static bool parse_source(const char *p, const char *end, bool port_optional,
                         char addr[LOGPARSE_ADDR_MAX])
{
    struct cursor c = {p, end};
    struct span a, port;
    uint64_t v;
    int family;

    if (!take_token(&c, &a) || !parse_addr(a.p, a.n, addr, &family))
        return false;
    if (c.p == c.end)
        return port_optional;
    if (c.end - c.p < 6 || memcmp(c.p, " port ", 6) != 0)
        return false;
    c.p += 6;
    port.p = c.p;
    while (c.p < c.end && is_digit(*c.p))
        c.p++;
    port.n = (size_t)(c.p - port.p);
    if (!parse_u64(port.p, port.n, 65535, &v))
        return false;
    return c.p == c.end || *c.p == ' ' || *c.p == ']';
}

/*
 * sshd: "USER from SOURCE" from p to end. USER may be empty or contain " from " (it is what the
 * client sent), so the separator is the last " from ": text after the address is ours.
 */
static bool parse_ssh_tail(const char *p, const char *end, bool port_optional,
                           char addr[LOGPARSE_ADDR_MAX], struct span *ret_user)
{
    const char *from = find_last(p, end, " from ");

    if (!from)
        return false;
    ret_user->p = p;
    ret_user->n = (size_t)(from - p);
    return parse_source(from + 6, end, port_optional, addr);
}

static bool parse_pam(const char *p, const char *end, char addr[LOGPARSE_ADDR_MAX],
                      struct span *ret_user)
{
    const char *rhost = memmem(p, (size_t)(end - p), " rhost=", 7);
    const char *user;
    struct cursor c;
    struct span host;
    int family;

    if (!rhost)
        return false;
    c.p = rhost + 7;
    c.end = end;
    if (!take_token(&c, &host) || !parse_addr(host.p, host.n, addr, &family))
        return false;
    ret_user->p = end;
    ret_user->n = 0;
    user = memmem(c.p, (size_t)(end - c.p), " user=", 6);
    if (user) {
        const char *u_end = end;
        while (u_end > user + 6 && (u_end[-1] == ' ' || u_end[-1] == '\r' || u_end[-1] == '\t'))
            u_end--;
        ret_user->p = user + 6;
        ret_user->n = (size_t)(u_end - (user + 6));
    }
    return true;
}

bool logparse_failed_login(const char *line, size_t len, char *ret_addr, size_t addrlen,
                           char *ret_user, size_t userlen)
{
    return logparse_failed_login_kind(line, len, ret_addr, addrlen, ret_user, userlen, NULL);
}

bool logparse_failed_login_kind(const char *line, size_t len, char *ret_addr, size_t addrlen,
                                char *ret_user, size_t userlen, enum logparse_login_kind *ret_kind)
{
    enum logparse_login_kind kind = LOGPARSE_LOGIN_INVALID_USER; /* set with ok below */
    char addr[LOGPARSE_ADDR_MAX];
    struct span user;
    const char *end, *p;
    bool ok = false;
    size_t alen;

    if (!line)
        return false;
    len = until_nul(line, len);
    if (len > 0 && line[len - 1] == '\n')
        len--;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    end = line + len;

    if ((p = find_marker(line, len, "Failed password for ")) != NULL) {
        static const char invalid[] = "invalid user ";
        if ((size_t)(end - p) >= sizeof(invalid) - 1 &&
            memcmp(p, invalid, sizeof(invalid) - 1) == 0)
            p += sizeof(invalid) - 1;
        ok = parse_ssh_tail(p, end, false, addr, &user);
        kind = LOGPARSE_LOGIN_FAILED_PASSWORD;
    } else if ((p = find_marker(line, len, "Invalid user ")) != NULL) {
        ok = parse_ssh_tail(p, end, true, addr, &user);
        kind = LOGPARSE_LOGIN_INVALID_USER;
    } else if ((p = find_marker(line, len, "authentication failure; ")) != NULL) {
        ok = parse_pam(p - 1, end, addr, &user);
        kind = LOGPARSE_LOGIN_PAM;
    }
    if (!ok)
        return false;

    alen = strlen(addr);
    if (ret_addr && alen >= addrlen)
        return false;
    if (ret_addr)
        memcpy(ret_addr, addr, alen + 1);
    if (ret_user && userlen > 0)
        copy_bounded(ret_user, userlen, user.p, user.n);
    if (ret_kind)
        *ret_kind = kind;
    return true;
}

/* ---- Named patterns --------------------------------------------------------------------- */

struct pattern {
    char name[LOGPARSE_NAME_MAX];
    regex_t re;
};

struct logparse_patterns {
    size_t count;
    struct pattern pat[LOGPARSE_PATTERNS_MAX];
    char line[LOGPARSE_MATCH_MAX + 1]; /* the bounded NUL-terminated copy regexec sees */
};

logparse_patterns_t *logparse_patterns_new(void)
{
    return calloc(1, sizeof(logparse_patterns_t));
}

void logparse_patterns_destroy(logparse_patterns_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    logparse_patterns_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++)
        regfree(&self->pat[i].re);
    free(self);
    *self_p = NULL;
}

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen > 0)
        copy_bounded(err, errlen, msg, strlen(msg));
}

int logparse_patterns_add(logparse_patterns_t *self, const char *name, const char *regex, char *err,
                          size_t errlen)
{
    size_t name_len;
    int rc;

    if (!self || !name || !regex) {
        set_err(err, errlen, "missing name or regex");
        return -EINVAL;
    }
    name_len = strnlen(name, LOGPARSE_NAME_MAX);
    if (name_len == 0 || name_len >= LOGPARSE_NAME_MAX) {
        set_err(err, errlen, "pattern name must be 1 to 63 bytes");
        return -EINVAL;
    }
    for (size_t i = 0; i < self->count; i++) {
        if (strcmp(self->pat[i].name, name) == 0) {
            set_err(err, errlen, "duplicate pattern name");
            return -EEXIST;
        }
    }
    if (self->count == LOGPARSE_PATTERNS_MAX) {
        set_err(err, errlen, "too many patterns");
        return -ENOSPC;
    }

    struct pattern *pat = &self->pat[self->count];
    rc = regcomp(&pat->re, regex, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        if (err && errlen > 0)
            regerror(rc, &pat->re, err, errlen);
        return rc == REG_ESPACE ? -ENOMEM : -EINVAL;
    }
    memcpy(pat->name, name, name_len + 1);
    self->count++;
    return 0;
}

int logparse_patterns_match(logparse_patterns_t *self, const char *line, size_t len,
                            logparse_match_fn *cb, void *userdata)
{
    int matched = 0;

    if (!self || (!line && len > 0))
        return -EINVAL;
    if (len > LOGPARSE_MATCH_MAX)
        len = LOGPARSE_MATCH_MAX;
    len = len ? until_nul(line, len) : 0;
    if (len)
        memcpy(self->line, line, len);
    self->line[len] = '\0';

    for (size_t i = 0; i < self->count; i++) {
        int rc = regexec(&self->pat[i].re, self->line, 0, NULL, 0);
        if (rc == REG_NOMATCH)
            continue;
        if (rc != 0)
            return -ENOMEM;
        matched++;
        if (cb)
            cb(self->pat[i].name, userdata);
    }
    return matched;
}

/* ---- Line splitter ---------------------------------------------------------------------- */

/*
 * The buffer holds cap + 1 bytes: a line of exactly cap bytes followed by "\r\n" may sit there
 * with its '\r' until the '\n' arrives. Anything longer is provably over the cap.
 */
struct logparse_lines {
    size_t cap;
    size_t used;
    bool skipping; /* the current line was delivered truncated; drop bytes up to '\n' */
    char *buf;
};

logparse_lines_t *logparse_lines_new(size_t cap)
{
    logparse_lines_t *self;

    if (cap == 0)
        cap = LOGPARSE_LINE_CAP_DEFAULT;
    if (cap > LOGPARSE_LINE_CAP_MAX)
        return NULL;
    self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->buf = malloc(cap + 1);
    if (!self->buf) {
        free(self);
        return NULL;
    }
    self->cap = cap;
    return self;
}

void logparse_lines_destroy(logparse_lines_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->buf);
    (*self_p)->buf = NULL;
    free(*self_p);
    *self_p = NULL;
}

/* A whole line (without '\n'): strips one '\r', truncates to cap. */
static void deliver(const logparse_lines_t *self, const char *p, size_t n, logparse_line_fn *cb,
                    void *userdata)
{
    if (n > 0 && p[n - 1] == '\r')
        n--;
    if (!cb)
        return;
    if (n > self->cap)
        cb(p, self->cap, true, userdata);
    else
        cb(p, n, false, userdata);
}

size_t logparse_lines_feed(logparse_lines_t *self, const void *data, size_t len,
                           logparse_line_fn *cb, void *userdata)
{
    const char *p = data;
    size_t delivered = 0;

    if (!self || !p)
        return 0;
    while (len > 0) {
        const char *nl = memchr(p, '\n', len);
        size_t seg = nl ? (size_t)(nl - p) : len;
        size_t room = self->cap + 1 - self->used;

        if (self->skipping) {
            /* nothing */
        } else if (self->used == 0 && nl) {
            deliver(self, p, seg, cb, userdata); /* whole line in this chunk: no copy */
            delivered++;
        } else if (seg <= room) {
            memcpy(self->buf + self->used, p, seg);
            self->used += seg;
            if (nl) {
                deliver(self, self->buf, self->used, cb, userdata);
                delivered++;
                self->used = 0;
            }
        } else {
            /* over cap + 1 bytes without a newline: over the cap whatever follows */
            if (self->used < self->cap)
                memcpy(self->buf + self->used, p, self->cap - self->used);
            if (cb)
                cb(self->buf, self->cap, true, userdata);
            delivered++;
            self->used = 0;
            self->skipping = true;
        }
        if (nl) {
            self->skipping = false;
            seg++;
        }
        p += seg;
        len -= seg;
    }
    return delivered;
}

size_t logparse_lines_flush(logparse_lines_t *self, logparse_line_fn *cb, void *userdata)
{
    size_t delivered = 0;

    if (!self)
        return 0;
    if (!self->skipping && self->used > 0) {
        deliver(self, self->buf, self->used, cb, userdata);
        delivered = 1;
    }
    self->used = 0;
    self->skipping = false;
    return delivered;
}

/* ---- Windowed counters ------------------------------------------------------------------ */

#define NIL UINT32_MAX
#define TIME_MAX ((int64_t)1 << 62)

/* A ring of per-second counts; the newest second is last_s. */
struct ring {
    uint32_t *counts;
    int64_t last_s;
};

struct wkey {
    char key[LOGPARSE_KEY_MAX];
    uint32_t hash;
    uint32_t chain;        /* next slot in the same hash bucket */
    uint32_t newer, older; /* recency list */
    struct ring ring;
};

struct logparse_window {
    unsigned seconds;
    size_t max_keys;
    size_t nkeys;      /* slots 0..nkeys-1 are in use */
    struct wkey *keys; /* max_keys */
    uint32_t *counts;  /* max_keys * seconds, the keys' rings */
    uint32_t *heads;   /* hash buckets: first slot or NIL */
    size_t head_mask;
    uint32_t newest, oldest;
    struct ring total;
    bool total_started;
    uint64_t evictions;
};

static size_t ring_slot(const logparse_window_t *self, int64_t t)
{
    return (size_t)(t % (int64_t)self->seconds);
}

static void ring_reset(const logparse_window_t *self, struct ring *r, int64_t now)
{
    memset(r->counts, 0, self->seconds * sizeof(*r->counts));
    r->last_s = now;
}

/* Moves the ring forward to now (zeroing the seconds skipped); false if now is too old. */
static bool ring_add(const logparse_window_t *self, struct ring *r, int64_t now)
{
    int64_t n = self->seconds;

    if (now > r->last_s) {
        if (now - r->last_s >= n) {
            ring_reset(self, r, now);
        } else {
            for (int64_t t = r->last_s + 1; t <= now; t++)
                r->counts[ring_slot(self, t)] = 0;
            r->last_s = now;
        }
    } else if (now <= r->last_s - n) {
        return false;
    }
    uint32_t *c = &r->counts[ring_slot(self, now)];
    if (*c < UINT32_MAX)
        (*c)++;
    return true;
}

static uint64_t ring_sum(const logparse_window_t *self, const struct ring *r, int64_t now)
{
    int64_t n = self->seconds;
    int64_t hi = now < r->last_s ? now : r->last_s;
    int64_t lo = now - n + 1 > r->last_s - n + 1 ? now - n + 1 : r->last_s - n + 1;
    uint64_t sum = 0;

    if (lo < 0)
        lo = 0;
    for (int64_t t = lo; t <= hi; t++)
        sum += r->counts[ring_slot(self, t)];
    return sum;
}

static uint32_t hash_key(const char *key)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

static bool valid_key(const char *key)
{
    if (!key)
        return false;
    size_t n = strnlen(key, LOGPARSE_KEY_MAX);
    return n > 0 && n < LOGPARSE_KEY_MAX;
}

static uint32_t find_key(const logparse_window_t *self, const char *key, uint32_t hash)
{
    for (uint32_t i = self->heads[hash & self->head_mask]; i != NIL; i = self->keys[i].chain)
        if (self->keys[i].hash == hash && strcmp(self->keys[i].key, key) == 0)
            return i;
    return NIL;
}

static void recency_unlink(logparse_window_t *self, uint32_t i)
{
    struct wkey *k = &self->keys[i];

    if (k->newer != NIL)
        self->keys[k->newer].older = k->older;
    else
        self->newest = k->older;
    if (k->older != NIL)
        self->keys[k->older].newer = k->newer;
    else
        self->oldest = k->newer;
    k->newer = k->older = NIL;
}

static void recency_push(logparse_window_t *self, uint32_t i)
{
    struct wkey *k = &self->keys[i];

    k->newer = NIL;
    k->older = self->newest;
    if (self->newest != NIL)
        self->keys[self->newest].newer = i;
    self->newest = i;
    if (self->oldest == NIL)
        self->oldest = i;
}

static void hash_unlink(logparse_window_t *self, uint32_t i)
{
    uint32_t *link = &self->heads[self->keys[i].hash & self->head_mask];

    while (*link != NIL && *link != i)
        link = &self->keys[*link].chain;
    if (*link == i)
        *link = self->keys[i].chain;
    self->keys[i].chain = NIL;
}

logparse_window_t *logparse_window_new(unsigned seconds, size_t max_keys)
{
    logparse_window_t *self;
    size_t heads = 1;

    if (max_keys == 0)
        max_keys = LOGPARSE_WINDOW_KEYS_DEFAULT;
    if (seconds == 0 || seconds > LOGPARSE_WINDOW_SECONDS_MAX ||
        max_keys > LOGPARSE_WINDOW_KEYS_MAX)
        return NULL;
    while (heads < 2 * max_keys)
        heads *= 2;

    self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->seconds = seconds;
    self->max_keys = max_keys;
    self->head_mask = heads - 1;
    self->newest = self->oldest = NIL;
    self->keys = calloc(max_keys, sizeof(*self->keys));
    self->counts = calloc(max_keys * seconds, sizeof(*self->counts));
    self->heads = malloc(heads * sizeof(*self->heads));
    self->total.counts = calloc(seconds, sizeof(*self->total.counts));
    if (!self->keys || !self->counts || !self->heads || !self->total.counts) {
        logparse_window_destroy(&self);
        return NULL;
    }
    for (size_t i = 0; i < heads; i++)
        self->heads[i] = NIL;
    for (size_t i = 0; i < max_keys; i++)
        self->keys[i].ring.counts = &self->counts[i * seconds];
    return self;
}

void logparse_window_destroy(logparse_window_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    logparse_window_t *self = *self_p;
    free(self->keys);
    self->keys = NULL;
    free(self->counts);
    self->counts = NULL;
    free(self->heads);
    self->heads = NULL;
    free(self->total.counts);
    self->total.counts = NULL;
    free(self);
    *self_p = NULL;
}

/* A slot for a new key: a free one, else the least recently added-to key's. */
static uint32_t take_slot(logparse_window_t *self, int64_t now)
{
    uint32_t i;

    if (self->nkeys < self->max_keys)
        return (uint32_t)self->nkeys++;
    i = self->oldest;
    if (ring_sum(self, &self->keys[i].ring, now) > 0)
        self->evictions++;
    recency_unlink(self, i);
    hash_unlink(self, i);
    return i;
}

int logparse_window_add(logparse_window_t *self, const char *key, int64_t now_s)
{
    uint32_t hash, i;

    if (!self || !valid_key(key) || now_s < 0 || now_s > TIME_MAX)
        return -EINVAL;
    if (!self->total_started) {
        ring_reset(self, &self->total, now_s);
        self->total_started = true;
    }
    if (!ring_add(self, &self->total, now_s))
        return -ERANGE;

    hash = hash_key(key);
    i = find_key(self, key, hash);
    if (i != NIL) {
        recency_unlink(self, i);
    } else {
        i = take_slot(self, now_s);
        struct wkey *k = &self->keys[i];
        memcpy(k->key, key, strlen(key) + 1);
        k->hash = hash;
        k->chain = self->heads[hash & self->head_mask];
        self->heads[hash & self->head_mask] = i;
        ring_reset(self, &k->ring, now_s);
    }
    recency_push(self, i);
    /* The key's newest second is never newer than the total's: this cannot be too old. */
    ring_add(self, &self->keys[i].ring, now_s);
    return 0;
}

uint64_t logparse_window_count(const logparse_window_t *self, const char *key, int64_t now_s)
{
    uint32_t i;

    if (!self || !valid_key(key) || now_s < 0 || now_s > TIME_MAX)
        return 0;
    i = find_key(self, key, hash_key(key));
    return i == NIL ? 0 : ring_sum(self, &self->keys[i].ring, now_s);
}

uint64_t logparse_window_total(const logparse_window_t *self, int64_t now_s)
{
    if (!self || !self->total_started || now_s < 0 || now_s > TIME_MAX)
        return 0;
    return ring_sum(self, &self->total, now_s);
}

uint64_t logparse_window_evictions(const logparse_window_t *self)
{
    return self ? self->evictions : 0;
}

size_t logparse_window_keys(const logparse_window_t *self)
{
    return self ? self->nkeys : 0;
}

static bool ranks_before(uint64_t count, const char *key, const struct logparse_window_entry *e)
{
    return count > e->count || (count == e->count && strcmp(key, e->key) < 0);
}

size_t logparse_window_top(const logparse_window_t *self, int64_t now_s,
                           struct logparse_window_entry *ret, size_t k)
{
    size_t filled = 0;

    if (!self || !ret || k == 0 || now_s < 0 || now_s > TIME_MAX)
        return 0;
    for (size_t i = 0; i < self->nkeys; i++) {
        const struct wkey *wk = &self->keys[i];
        uint64_t count = ring_sum(self, &wk->ring, now_s);
        size_t pos = filled;

        if (count == 0)
            continue;
        while (pos > 0 && ranks_before(count, wk->key, &ret[pos - 1]))
            pos--;
        if (pos >= k)
            continue;
        if (filled < k)
            filled++;
        memmove(&ret[pos + 1], &ret[pos], (filled - 1 - pos) * sizeof(*ret));
        memcpy(ret[pos].key, wk->key, sizeof(ret[pos].key));
        ret[pos].count = count;
    }
    return filled;
}
