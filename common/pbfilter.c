/* Unknown protobuf fields, counted and stripped: see pbfilter.h. */
#include "pbfilter.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_LEN = 2, WIRE_FIXED32 = 5 };

/* Reads a varint at *pos; false when it runs past end or over 10 bytes. */
static bool read_varint(const uint8_t *buf, size_t end, size_t *pos, uint64_t *ret)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 70 && *pos < end; shift += 7) {
        uint8_t b = buf[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *ret = v;
            return true;
        }
    }
    return false;
}

static size_t write_varint(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        out[n++] = b | (v ? 0x80 : 0);
    } while (v);
    return n;
}

/* One field of the wire: where it starts, its payload (for WIRE_LEN) and where it ends. */
struct field {
    uint32_t number;
    unsigned wire_type;
    size_t start, payload, payload_len, end;
};

/* Reads the field at pos; false when it is malformed. */
static bool next_field(const uint8_t *buf, size_t len, size_t pos, struct field *f)
{
    uint64_t tag, n;
    f->start = pos;
    if (!read_varint(buf, len, &pos, &tag) || (tag >> 3) == 0 || (tag >> 3) > UINT32_MAX)
        return false;
    f->number = (uint32_t)(tag >> 3);
    f->wire_type = tag & 7;
    f->payload = pos;
    f->payload_len = 0;
    switch (f->wire_type) {
    case WIRE_VARINT:
        if (!read_varint(buf, len, &pos, &n))
            return false;
        break;
    case WIRE_FIXED64:
        if (len - pos < 8)
            return false;
        pos += 8;
        break;
    case WIRE_FIXED32:
        if (len - pos < 4)
            return false;
        pos += 4;
        break;
    case WIRE_LEN:
        if (!read_varint(buf, len, &pos, &n) || n > len - pos)
            return false;
        f->payload = pos;
        f->payload_len = (size_t)n;
        pos += (size_t)n;
        break;
    default: /* groups (3, 4) are not used by Vigil's messages; 6 and 7 do not exist */
        return false;
    }
    f->end = pos;
    return true;
}

/* The descriptor of field number's sub-message, when it is a known message-typed field. */
static const ProtobufCMessageDescriptor *submessage(const ProtobufCFieldDescriptor *fd,
                                                    unsigned wire_type)
{
    if (fd && fd->type == PROTOBUF_C_TYPE_MESSAGE && wire_type == WIRE_LEN)
        return fd->descriptor;
    return NULL;
}

static int count(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                 unsigned depth, struct vg_pb_unknown *acc)
{
    if (depth > VG_PB_DEPTH_MAX)
        return -EBADMSG;
    for (size_t pos = 0; pos < len;) {
        struct field f;
        if (!next_field(buf, len, pos, &f))
            return -EBADMSG;
        const ProtobufCFieldDescriptor *fd =
            protobuf_c_message_descriptor_get_field(desc, f.number);
        const ProtobufCMessageDescriptor *sub = submessage(fd, f.wire_type);
        if (!fd) {
            acc->fields++;
            acc->bytes += f.end - f.start;
        } else if (sub) {
            int r = count(sub, buf + f.payload, f.payload_len, depth + 1, acc);
            if (r < 0)
                return r;
        }
        pos = f.end;
    }
    return 0;
}

int vg_pb_count_unknown(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                        struct vg_pb_unknown *ret)
{
    struct vg_pb_unknown acc = {0};
    int r = count(desc, buf, len, 0, &acc);
    if (r == 0)
        *ret = acc;
    return r;
}

/*
 * Writes buf's known fields to out and returns their length. A known sub-message is written
 * after room for the longest length prefix, then moved down to sit right after its real one,
 * so out needs len + 10 bytes per level of nesting.
 */
static int strip(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                 unsigned depth, uint8_t *out, size_t *ret_len)
{
    size_t o = 0;
    if (depth > VG_PB_DEPTH_MAX)
        return -EBADMSG;
    for (size_t pos = 0; pos < len;) {
        struct field f;
        if (!next_field(buf, len, pos, &f))
            return -EBADMSG;
        const ProtobufCFieldDescriptor *fd =
            protobuf_c_message_descriptor_get_field(desc, f.number);
        const ProtobufCMessageDescriptor *sub = submessage(fd, f.wire_type);
        if (fd && !sub) {
            memcpy(out + o, buf + f.start, f.end - f.start);
            o += f.end - f.start;
        } else if (sub) {
            /* The tag as it was, then the new length prefix, then the stripped payload. */
            size_t tag_end = f.start;
            uint64_t tag;
            read_varint(buf, len, &tag_end, &tag);
            size_t header_len = tag_end - f.start;
            memcpy(out + o, buf + f.start, header_len);
            size_t child_len = 0;
            uint8_t *child = out + o + header_len + 10;
            int r = strip(sub, buf + f.payload, f.payload_len, depth + 1, child, &child_len);
            if (r < 0)
                return r;
            size_t n = write_varint(out + o + header_len, child_len);
            memmove(out + o + header_len + n, child, child_len);
            o += header_len + n + child_len;
        }
        pos = f.end;
    }
    *ret_len = o;
    return 0;
}

int vg_pb_strip_unknown(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                        uint8_t **ret, size_t *ret_len)
{
    uint8_t *out = malloc(len + 10 * (VG_PB_DEPTH_MAX + 1) + 1);
    if (!out)
        return -ENOMEM;
    size_t n = 0;
    int r = strip(desc, buf, len, 0, out, &n);
    if (r < 0) {
        free(out);
        return r;
    }
    *ret = out;
    *ret_len = n;
    return 0;
}

int vg_pb_peek_varint(const uint8_t *buf, size_t len, uint32_t number, uint64_t *ret)
{
    bool found = false;
    uint64_t value = 0;
    for (size_t pos = 0; pos < len;) {
        struct field f;
        if (!next_field(buf, len, pos, &f))
            break;
        if (f.number == number && f.wire_type == WIRE_VARINT) {
            size_t p = f.payload;
            found = read_varint(buf, len, &p, &value);
        }
        pos = f.end;
    }
    if (!found)
        return -ENOENT;
    *ret = value;
    return 0;
}
