/*
 * What the test tools that stand in for an agent share: one envelope out, one envelope in, over
 * a DEALER socket. A failure to send or receive ends the tool (exit 2) with its name.
 */
#ifndef TESTS_FAKE_WIRE_H
#define TESTS_FAKE_WIRE_H

#include "vigil.pb-c.h"

/* Encodes and sends env; exits 2 on failure. */
void fake_wire_send(const char *tool, void *socket, Vigil__Envelope *env);

/* The next envelope within timeout_ms, or NULL (none came, or it did not decode: said on
 * stderr). The caller frees it with vigil__envelope__free_unpacked. */
Vigil__Envelope *fake_wire_receive(const char *tool, void *socket, int timeout_ms);

#endif
