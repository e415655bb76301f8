/*
 * Unknown protobuf fields, bounded before decoding.
 *
 * protobuf-c keeps every field it does not know, each in an allocation of its own: 4 MiB of
 * two-byte unknown varints decode into about two million allocations, over 100 MiB, from one
 * message. Refusing unknown fields would cut off a newer peer during a rolling upgrade, so they
 * are capped instead: a message with a few is decoded as it is (protobuf-c keeps them, harmless),
 * one with more than the caps is first copied without any unknown field. Both walk the wire
 * format with the message's descriptor, recursing into known sub-messages, without allocating
 * per field.
 */
#ifndef VG_PBFILTER_H
#define VG_PBFILTER_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#define VG_PB_UNKNOWN_FIELDS_MAX 64         /* per message, at every depth together */
#define VG_PB_UNKNOWN_BYTES_MAX (16 * 1024) /* their wire bytes, tags included */
#define VG_PB_DEPTH_MAX 16                  /* nesting deeper than this is malformed */

struct vg_pb_unknown {
    size_t fields;
    size_t bytes;
};

/* Counts the unknown fields of buf (len bytes) as a desc message. 0, or -EBADMSG when buf is
 * not well-formed protobuf (groups, a truncated field, nesting past VG_PB_DEPTH_MAX). */
int vg_pb_count_unknown(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                        struct vg_pb_unknown *ret);

/* A copy of buf without any unknown field, at any depth: *ret (malloc'd, caller frees) of
 * *ret_len bytes, never longer than len. 0, -EBADMSG as above, or -ENOMEM. */
int vg_pb_strip_unknown(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                        uint8_t **ret, size_t *ret_len);

/* The last value of the top-level varint field number in buf, read up to the first malformed
 * field: 0, or -ENOENT when it is not there. For naming a message that cannot be decoded. */
int vg_pb_peek_varint(const uint8_t *buf, size_t len, uint32_t number, uint64_t *ret);

#endif
