/*
 * Command outputs kept for the vault (docs/remediation.md, "Executor"): the executor sends the
 * kept output of each command it ran (CommandOutput messages, in order, before the DONE report);
 * the agent writes it to <dir>/<request id> and the coordinator's command_output collection
 * reads it back from there (evidence_kinds.c), so the output reaches the vault through the
 * same verified, chained path as any artifact.
 *
 * A file is written as <id>.part and renamed when its last chunk came, so a reader never sees
 * half an output. At most CMD_OUTPUT_KEEP complete outputs are kept; older ones are removed
 * (by modification time) when a new one completes. Files survive an agent restart.
 *
 * Threads: cmd_output_take runs on the agent's main thread; cmd_output_open on the evidence
 * worker. They share only the directory path, which does not change.
 */
#ifndef AGENT_CMD_OUTPUT_H
#define AGENT_CMD_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CMD_OUTPUT_KEEP 64

typedef struct cmd_output cmd_output_t;

/* Creates dir (0700) when missing. NULL with err set when it cannot be used. */
cmd_output_t *cmd_output_new(const char *dir, char *err, size_t errlen);
void cmd_output_destroy(cmd_output_t **self_p);

/* Takes one packed CommandOutput from the executor. 0, or a negative errno (logged): -EPROTO
 * for a message out of order or with a request id that is not a plain name. */
int cmd_output_take(cmd_output_t *self, const uint8_t *data, size_t len);

/* The complete output of request_id, open for reading: a descriptor, or a negative errno with
 * err set (-ENOENT: none kept, -EINVAL: not a request id). */
int cmd_output_open(const cmd_output_t *self, const char *request_id, char *err, size_t errlen);

/* True for a request id that can name a file here: 1 to 64 of A-Z a-z 0-9 _ - ., not starting
 * with a dot. */
bool cmd_output_id_ok(const char *request_id);

#endif
