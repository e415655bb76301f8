/*
 * Strict readers for the fields of the signed text formats (checkpoints, export manifests):
 * one spelling per value, so a signed text cannot be read two ways.
 */
#ifndef VG_STRICT_TEXT_H
#define VG_STRICT_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A decimal number of len bytes: digits only, no sign, no leading zero, at most max. */
bool vg_strict_decimal(const char *s, size_t len, uint64_t max, uint64_t *ret);

/* Exactly 64 lowercase hex digits into 32 bytes. */
bool vg_strict_hex32(const char *s, size_t len, uint8_t out[32]);

#endif
