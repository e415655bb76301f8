/*
 * UTF-8 as PostgreSQL and JSON accept it: strict (no overlong forms, no surrogates, nothing
 * above U+10FFFF). Text that crosses the wire is checked with these, and text an agent reads
 * from the machine (a mount point, a process name) is escaped with them before it is sent.
 */
#ifndef VG_UTF8_H
#define VG_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* The length (1-4) of the valid character at s, of at most avail bytes; 0 if it is not one. */
size_t vg_utf8_char_len(const char *s, size_t avail);

/* True when the NUL-terminated text is valid UTF-8. */
bool vg_utf8_valid(const char *text);

/* The longest prefix of s (len bytes) of at most max bytes that ends on a character
 * boundary: cutting there never leaves half a character. */
size_t vg_utf8_cut(const char *s, size_t len, size_t max);

/*
 * Copies text into out (outlen bytes, always NUL-terminated), every byte that is not part of a
 * valid character written as the four characters \xNN, so the result is valid UTF-8 and still
 * says which bytes were there. Stops at a character boundary when out is full. Returns the
 * number of bytes written (without the NUL); *ret_escaped (may be NULL) tells whether any byte
 * was escaped.
 */
size_t vg_utf8_escape(const char *text, char *out, size_t outlen, bool *ret_escaped);

#endif
