/*
 * Checks on configuration files that the table loader (common/config.h) cannot make, for the
 * files that decide what may run on this node: agent.yaml's action catalog (actions.h) and the
 * signer file (signers.h).
 *
 * Positions. The loader places its own errors, but it keeps no positions in the struct it
 * fills, so checks that run after it (a name defined twice, an argv element that mixes text and
 * a placeholder) parse the file again and find the place by its YAML path: "/actions/2/argv/1"
 * is the second element of argv in the third action. Messages then read like the loader's:
 *
 *   agent.yaml:14:25: action "restart-web": argv[1] "--unit={unit}" mixes text and a placeholder
 *
 * A path that is not in the file (it changed since it was loaded) or a node without a position
 * falls back to its nearest ancestor below the top level that has one, then to "file: message".
 * coordinator/paging/paging_config.c places its post-load errors the same way.
 *
 * Ownership. A file that says what may run as root on the node must be a regular file owned by
 * root and writable by nobody else (cfgcheck_root_owned): whoever can write it can run anything
 * the executor can.
 *
 * Not thread-safe per document; any thread may open its own.
 */
#ifndef AGENT_CFGCHECK_H
#define AGENT_CFGCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

typedef struct cfgcheck_doc cfgcheck_doc_t;

/* Parses path again. NULL when it cannot be read or parsed; cfgcheck_fail then writes
 * "file: message" and cfgcheck_has answers false. */
cfgcheck_doc_t *cfgcheck_doc_open(const char *path);
void cfgcheck_doc_close(cfgcheck_doc_t **self_p);

/* True when the document has a node at ypath ("/actions/0/params/1/ip"), even a null one
 * ("ip:" with nothing after it). */
bool cfgcheck_has(const cfgcheck_doc_t *doc, const char *ypath);

/* Writes "file:line:col: message" for the node at ypath into err and returns -EINVAL, so a
 * check can `return cfgcheck_fail(...)`. file names the file when doc is NULL. */
int cfgcheck_fail(const cfgcheck_doc_t *doc, const char *file, const char *ypath, char *err,
                  size_t errlen, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/*
 * 0 when path is a regular file (symbolic links followed, as in a Kubernetes ConfigMap mount)
 * owned by root and not writable by group or others; -EPERM otherwise, -errno when it cannot be
 * examined (-ENOENT when it does not exist). err names the file as kind ("signer file") and the
 * problem. On success *ret_st (may be NULL) gets the file's status, so a caller can check that
 * the file it then read is the one it examined (cfgcheck_same_file).
 */
int cfgcheck_root_owned(const char *path, const char *kind, struct stat *ret_st, char *err,
                        size_t errlen);

/* True when path still names the file st describes (same device and inode). */
bool cfgcheck_same_file(const char *path, const struct stat *st);

#endif
