/* Envelope in and out for the fake agents (fake_wire.h). */
#include "fake_wire.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <zmq.h>

#include "wire.h"

void fake_wire_send(const char *tool, void *socket, Vigil__Envelope *env)
{
    uint8_t *buf;
    size_t len;
    if (vg_envelope_encode(env, &buf, &len) < 0 || zmq_send(socket, buf, len, 0) < 0) {
        fprintf(stderr, "%s: send failed\n", tool);
        exit(2);
    }
    free(buf);
}

Vigil__Envelope *fake_wire_receive(const char *tool, void *socket, int timeout_ms)
{
    zmq_pollitem_t item = {socket, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, timeout_ms) <= 0)
        return NULL;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, socket, 0) < 0) {
        fprintf(stderr, "%s: receive failed\n", tool);
        exit(2);
    }
    Vigil__Envelope *env = NULL;
    const char *why = NULL;
    if (vg_envelope_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), &env, &why) != VG_DECODE_OK)
        fprintf(stderr, "%s: undecodable message: %s\n", tool, why ? why : "?");
    zmq_msg_close(&msg);
    return env;
}
