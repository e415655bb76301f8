/* Temporary files for the fuzz targets: the contract is in inputfiles.h. */
#include "inputfiles.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    if (ftw->level == 0)
        return 0; /* keep the directory itself */
    if (remove(path) < 0 && errno != ENOENT)
        return -1;
    return 0;
}

static void remove_all(void)
{
    if (dir[0] == '\0')
        return;
    inputfiles_reset();
    rmdir(dir);
}

const char *inputfiles_dir(void)
{
    if (dir[0] == '\0') {
        snprintf(dir, sizeof(dir), "/tmp/vigil-fuzz-XXXXXX");
        if (!mkdtemp(dir))
            abort();
        atexit(remove_all);
    }
    return dir;
}

void inputfiles_reset(void)
{
    if (nftw(inputfiles_dir(), remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        abort();
}

static bool name_ok(const char *name)
{
    if (name[0] == '\0' || name[0] == '/')
        return false;
    for (const char *p = name; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-' || *p == '/'))
            return false;
    }
    /* No empty, "." or ".." component. */
    for (const char *p = name; *p;) {
        size_t len = strcspn(p, "/");
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        p += len;
        if (*p == '/')
            p++;
        if (*p == '\0' && p[-1] == '/')
            return false;
    }
    return true;
}

/* Creates the directories on the way to path (relative to dir); false when one is a file. */
static bool make_parents(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + strlen(dir) + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        if (mkdir(buf, 0700) < 0 && errno != EEXIST)
            return false;
        struct stat st;
        if (stat(buf, &st) < 0 || !S_ISDIR(st.st_mode))
            return false;
        *p = '/';
    }
    return true;
}

const char *inputfiles_write(const char *name, const uint8_t *data, size_t size)
{
    static char path[4096];
    snprintf(path, sizeof(path), "%s/%s", inputfiles_dir(), name);
    if (!make_parents(path))
        return NULL;
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return NULL; /* a directory of that name came first */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        abort();
    while (size > 0) {
        ssize_t n = write(fd, data, size);
        if (n <= 0)
            abort();
        data += n;
        size -= (size_t)n;
    }
    close(fd);
    return path;
}

size_t inputfiles_unpack(const uint8_t *data, size_t size)
{
    static const char sep[] = INPUTFILES_SEPARATOR;
    const size_t seplen = sizeof(sep) - 1;
    size_t written = 0;

    inputfiles_reset();
    for (size_t parts = 0; parts < INPUTFILES_MAX && size > 0; parts++) {
        const uint8_t *end = memmem(data, size, sep, seplen);
        size_t len = end ? (size_t)(end - data) : size;
        const uint8_t *nl = memchr(data, '\n', len);
        if (nl && (size_t)(nl - data) < 256) {
            char name[256];
            memcpy(name, data, (size_t)(nl - data));
            name[nl - data] = '\0';
            if (name_ok(name) &&
                inputfiles_write(name, nl + 1, len - (size_t)(nl + 1 - data)) != NULL)
                written++;
        }
        if (!end)
            break;
        data = end + seplen;
        size -= len + seplen;
    }
    return written;
}
