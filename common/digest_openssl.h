/*
 * SHA-256 on OpenSSL's libcrypto, as an engine for digest.h: SHA-NI or AVX2 code where the
 * processor has it, several times libsodium's portable C on whole artifacts.
 *
 * Only for programs that map libcrypto anyway (the coordinator and vigilctl, through libpq and
 * libcurl); the agent stays on libsodium.
 */
#ifndef VG_DIGEST_OPENSSL_H
#define VG_DIGEST_OPENSSL_H

#include "digest.h"

/* The engine, or NULL when libcrypto cannot provide SHA-256 (then libsodium stays). */
const struct vg_sha256_engine *vg_sha256_openssl(void);

#endif
