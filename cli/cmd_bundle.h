/* Export bundles (cmd_bundle.c): `vigilctl evidence export` and `evidence verify-bundle`, run by
 * the evidence command (cmd_evidence.c). Each returns a CTL_EXIT_* code after printing. */
#ifndef CTL_CMD_BUNDLE_H
#define CTL_CMD_BUNDLE_H

#include "commands.h"

/* argv: INCIDENT. out_path: --out. */
int ctl_evidence_export(struct ctl_context *ctx, const char *out_path, int argc, char **argv);
/* argv: FILE. Needs no configuration: it never talks to the coordinator. */
int ctl_evidence_verify_bundle(struct ctl_context *ctx, int argc, char **argv);

#endif
