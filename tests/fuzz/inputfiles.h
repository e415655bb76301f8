/*
 * For fuzz targets whose decoder reads files, not buffers (the YAML loaders, the spool, the
 * replay cache, a /proc tree): one private temporary directory per process, emptied before
 * every input, and the input written into it as one file or as several.
 *
 * Several files: the input is a sequence of parts separated by INPUTFILES_SEPARATOR, each part
 * "<relative path>\n<content>". A path may have directories ("123/stat", "net/tcp"); one that is
 * empty, absolute, has a "." or ".." component or a byte outside [A-Za-z0-9._/-] is skipped, and
 * so is a part without a newline. At most INPUTFILES_MAX parts are written; a later part with the
 * same path replaces the file. The directory is removed at exit.
 */
#ifndef VIGIL_INPUTFILES_H
#define VIGIL_INPUTFILES_H

#include <stddef.h>
#include <stdint.h>

#define INPUTFILES_SEPARATOR "\n--8<--\n"
#define INPUTFILES_MAX 64

/* The directory (created on first use, empty after inputfiles_reset), e.g. /tmp/vigil-fuzz-XXXX. */
const char *inputfiles_dir(void);

/* Empties the directory. Aborts when it cannot. */
void inputfiles_reset(void);

/* Writes data to <dir>/<name> (mode 0600) and returns the full path (static buffer). */
const char *inputfiles_write(const char *name, const uint8_t *data, size_t size);

/* Empties the directory and writes the parts of data as described above. Returns how many
 * files were written. */
size_t inputfiles_unpack(const uint8_t *data, size_t size);

#endif
