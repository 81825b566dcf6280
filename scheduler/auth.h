/* SPDX-License-Identifier: Apache-2.0 */
/* Who may use the REST API: HTTP basic credentials (Marathon's
 * --http_credentials) and bearer tokens from a file, each with full access or
 * read-only. One check per request, before its body is read, whatever apps it
 * touches: no authorizer call per app (docs/rest-api.md, "Authentication"). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define AUTH_TOKEN_MIN      16
#define AUTH_TOKEN_MAX      512
#define AUTH_TOKENS_MAX     1024
#define AUTH_TOKEN_FILE_MAX (256u * 1024)
#define AUTH_PRINCIPAL_MAX  96

typedef struct Auth Auth;

typedef enum AuthAccess {
        AUTH_READ,  /* GET, HEAD: reading state */
        AUTH_WRITE, /* everything that changes state */
} AuthAccess;

/* credentials: "user:password" or NULL; token_file: a path or NULL. *ret is
 * NULL when both are unset: the API is open. A bad value or file is an error
 * that names it (and the line), never a half-loaded list. */
int auth_new(const char *credentials, const char *token_file, Auth **ret, PacerError *err);
Auth *auth_free(Auth *a);

/* The HTTP status for a request with this Authorization header (NULL when it
 * has none) that needs `need`: 0 to let it through, 401 when it carries no
 * credentials these are, 403 when they are read-only and it writes. On 0,
 * principal (if given) names who it was, for the log: "user alice", "token
 * at line 3". */
int auth_check(const Auth *a, const char *authorization, AuthAccess need,
               char principal[static AUTH_PRINCIPAL_MAX]);

/* The WWW-Authenticate challenge of a 401. */
const char *auth_challenge(const Auth *a);

/* Decodes standard base64 (with padding) into out (at most out_max bytes);
 * returns the length or -EINVAL. */
int auth_base64_decode(const char *in, size_t len, unsigned char *out, size_t out_max);
