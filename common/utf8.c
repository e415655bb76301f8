/* Strict UTF-8: see utf8.h. */
#include "utf8.h"

#include <stdint.h>
#include <string.h>

size_t vg_utf8_char_len(const char *s, size_t avail)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n;
    uint32_t cp;

    if (avail == 0)
        return 0;
    if (u[0] < 0x80)
        return 1;
    if (u[0] >= 0xc2 && u[0] <= 0xdf) {
        n = 2;
        cp = u[0] & 0x1f;
    } else if (u[0] >= 0xe0 && u[0] <= 0xef) {
        n = 3;
        cp = u[0] & 0x0f;
    } else if (u[0] >= 0xf0 && u[0] <= 0xf4) {
        n = 4;
        cp = u[0] & 0x07;
    } else {
        return 0;
    }
    if (n > avail)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((u[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (u[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

bool vg_utf8_valid(const char *text)
{
    size_t len = strlen(text);
    for (size_t i = 0; i < len;) {
        size_t n = vg_utf8_char_len(text + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

size_t vg_utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t cut = max;
    /* Back over continuation bytes to the start of the character that crosses max. */
    while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80)
        cut--;
    return cut;
}

size_t vg_utf8_escape(const char *text, char *out, size_t outlen, bool *ret_escaped)
{
    static const char hex[] = "0123456789abcdef";
    size_t len = strlen(text), o = 0;
    bool escaped = false;

    if (outlen == 0)
        return 0;
    for (size_t i = 0; i < len;) {
        size_t n = vg_utf8_char_len(text + i, len - i);
        if (n > 0) {
            if (o + n >= outlen)
                break;
            memcpy(out + o, text + i, n);
            o += n;
            i += n;
            continue;
        }
        if (o + 4 >= outlen)
            break;
        unsigned char c = (unsigned char)text[i++];
        out[o++] = '\\';
        out[o++] = 'x';
        out[o++] = hex[c >> 4];
        out[o++] = hex[c & 0xf];
        escaped = true;
    }
    out[o] = '\0';
    if (ret_escaped)
        *ret_escaped = escaped;
    return o;
}
