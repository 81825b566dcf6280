/* SPDX-License-Identifier: Apache-2.0 */
#include "auth.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"

#define CREDENTIALS_MAX 1024
#define LINE_MAX_LEN    (AUTH_TOKEN_MAX + 64)

typedef struct Token {
        char *value;
        size_t len;
        AuthAccess access;
        unsigned line;
} Token;

struct Auth {
        char *credentials; /* "user:password" */
        size_t credentials_len;
        size_t user_len;
        Token *tokens;
        size_t n_tokens;
};

Auth *auth_free(Auth *a)
{
        if (!a)
                return NULL;
        if (a->credentials) {
                explicit_bzero(a->credentials, a->credentials_len);
                free(a->credentials);
        }
        for (size_t i = 0; i < a->n_tokens; i++) {
                explicit_bzero(a->tokens[i].value, a->tokens[i].len);
                free(a->tokens[i].value);
        }
        free(a->tokens);
        free(a);
        return NULL;
}

static void auth_freep(Auth **a)
{
        auth_free(*a);
}

static void fclosep(FILE **f)
{
        if (*f)
                fclose(*f);
}

static bool printable_token(const char *s, size_t len)
{
        for (size_t i = 0; i < len; i++)
                if (s[i] <= ' ' || s[i] > '~')
                        return false;
        return true;
}

static int parse_credentials(Auth *a, const char *c, PacerError *err)
{
        const char *colon = strchr(c, ':');
        size_t len = strlen(c);

        if (!colon || colon == c || !colon[1])
                return pacer_error_set(err, EINVAL,
                                       "--http-credentials: expected USER:PASSWORD, both non-empty");
        if (len > CREDENTIALS_MAX)
                return pacer_error_set(err, EINVAL, "--http-credentials: longer than %d bytes",
                                       CREDENTIALS_MAX);
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)c[i] < ' ' || c[i] == 0x7f)
                        return pacer_error_set(err, EINVAL,
                                               "--http-credentials: control character at byte %zu", i + 1);
        a->credentials = strdup(c);
        if (!a->credentials)
                return -ENOMEM;
        a->credentials_len = len;
        a->user_len = (size_t)(colon - c);
        return 0;
}

/* One line of the token file: "TOKEN", "TOKEN read" or "TOKEN write"; blank
 * lines and lines starting with '#' are skipped. */
static int parse_token_line(Auth *a, char *line, unsigned lineno, const char *path, PacerError *err)
{
        char *p = line, *tok, *access, *rest;
        size_t n = strlen(line);

        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                line[--n] = 0;
        while (*p == ' ' || *p == '\t')
                p++;
        if (!*p || *p == '#')
                return 0;
        tok = p;
        p += strcspn(p, " \t");
        if (*p)
                *p++ = 0;
        access = p + strspn(p, " \t");
        rest = access + strcspn(access, " \t");
        if (*rest) {
                *rest++ = 0;
                rest += strspn(rest, " \t");
        }
        size_t len = strlen(tok);
        if (len < AUTH_TOKEN_MIN || len > AUTH_TOKEN_MAX)
                return pacer_error_set(err, EINVAL,
                                       "%s:%u: a token must be %d to %d characters (it has %zu): use a long "
                                       "random string, e.g. from 'openssl rand -hex 24'",
                                       path, lineno, AUTH_TOKEN_MIN, AUTH_TOKEN_MAX, len);
        if (!printable_token(tok, len))
                return pacer_error_set(err, EINVAL, "%s:%u: a token must be printable ASCII without spaces",
                                       path, lineno);
        AuthAccess acc = AUTH_WRITE;
        if (*access && streq(access, "read"))
                acc = AUTH_READ;
        else if (*access && !streq(access, "write"))
                return pacer_error_set(err, EINVAL, "%s:%u: access must be 'read' or 'write', not '%.32s'",
                                       path, lineno, access);
        if (*rest)
                return pacer_error_set(err, EINVAL, "%s:%u: unexpected '%.32s' after the access", path,
                                       lineno, rest);
        for (size_t i = 0; i < a->n_tokens; i++)
                if (a->tokens[i].len == len && memcmp(a->tokens[i].value, tok, len) == 0)
                        return pacer_error_set(err, EINVAL, "%s:%u: the same token as line %u", path, lineno,
                                               a->tokens[i].line);
        if (a->n_tokens == AUTH_TOKENS_MAX)
                return pacer_error_set(err, E2BIG, "%s:%u: more than %d tokens", path, lineno,
                                       AUTH_TOKENS_MAX);
        if (a->n_tokens % 16 == 0) {
                Token *t = realloc(a->tokens, (a->n_tokens + 16) * sizeof(*t));
                if (!t)
                        return -ENOMEM;
                a->tokens = t;
        }
        char *copy = strdup(tok);
        if (!copy)
                return -ENOMEM;
        a->tokens[a->n_tokens++] = (Token){ .value = copy, .len = len, .access = acc, .line = lineno };
        return 0;
}

static int load_tokens(Auth *a, const char *path, PacerError *err)
{
        _cleanup_(fclosep) FILE *f = fopen(path, "re");
        char line[LINE_MAX_LEN + 2];
        unsigned lineno = 0;
        size_t total = 0;
        int r;

        if (!f)
                return pacer_error_set(err, errno, "--http-token-file %s: %m", path);
        while (fgets(line, sizeof(line), f)) {
                size_t n = strlen(line);
                lineno++;
                total += n;
                if (total > AUTH_TOKEN_FILE_MAX)
                        return pacer_error_set(err, EFBIG, "%s: larger than %u bytes", path,
                                               AUTH_TOKEN_FILE_MAX);
                if (n == sizeof(line) - 1 && line[n - 1] != '\n')
                        return pacer_error_set(err, EINVAL, "%s:%u: line longer than %d bytes", path, lineno,
                                               LINE_MAX_LEN);
                r = parse_token_line(a, line, lineno, path, err);
                explicit_bzero(line, sizeof(line));
                if (r < 0)
                        return r;
        }
        if (ferror(f))
                return pacer_error_set(err, EIO, "--http-token-file %s: read error", path);
        if (a->n_tokens == 0)
                return pacer_error_set(err, EINVAL,
                                       "%s: no token in it: with an empty list nobody could use the API",
                                       path);
        return 0;
}

int auth_new(const char *credentials, const char *token_file, Auth **ret, PacerError *err)
{
        _cleanup_(auth_freep) Auth *a = NULL;
        int r;

        *ret = NULL;
        if ((!credentials || !*credentials) && (!token_file || !*token_file))
                return 0;
        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        if (credentials && *credentials && (r = parse_credentials(a, credentials, err)) < 0)
                return r;
        if (token_file && *token_file && (r = load_tokens(a, token_file, err)) < 0)
                return r;
        *ret = TAKE_PTR(a);
        return 0;
}

/* Compares in time that depends on the lengths only, never on where the bytes differ. */
static bool equal_secret(const void *a, size_t alen, const void *b, size_t blen)
{
        const unsigned char *x = a, *y = b;
        unsigned char d = alen != blen;

        for (size_t i = 0; i < alen; i++)
                d |= x[i] ^ (i < blen ? y[i] : 0);
        return d == 0;
}

static int b64_value(unsigned char c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

int auth_base64_decode(const char *in, size_t len, unsigned char *out, size_t out_max)
{
        size_t n = 0;

        if (len % 4 != 0)
                return -EINVAL;
        for (size_t i = 0; i < len; i += 4) {
                int v[4];
                size_t pad = 0;
                for (int k = 0; k < 4; k++) {
                        if (in[i + k] == '=' && i + 4 == len && k >= 2) {
                                v[k] = 0;
                                pad++;
                                continue;
                        }
                        if (pad || (v[k] = b64_value((unsigned char)in[i + k])) < 0)
                                return -EINVAL;
                }
                uint32_t w =
                        (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
                unsigned char bytes[3] = { (unsigned char)(w >> 16), (unsigned char)(w >> 8),
                                           (unsigned char)w };
                for (size_t k = 0; k < 3 - pad; k++) {
                        if (n == out_max)
                                return -EINVAL;
                        out[n++] = bytes[k];
                }
        }
        return (int)n;
}

/* "Scheme <value>": the value when the scheme matches (in any case), else NULL. */
static const char *scheme_value(const char *h, const char *scheme)
{
        size_t l = strlen(scheme);

        if (strncasecmp(h, scheme, l) != 0 || (h[l] != ' ' && h[l] != '\t'))
                return NULL;
        h += l;
        while (*h == ' ' || *h == '\t')
                h++;
        return h;
}

int auth_check(const Auth *a, const char *authorization, AuthAccess need,
               char principal[static AUTH_PRINCIPAL_MAX])
{
        const char *v;

        principal[0] = 0;
        if (!a)
                return 0;
        if (!authorization)
                return 401;
        if (a->credentials && (v = scheme_value(authorization, "Basic"))) {
                unsigned char decoded[CREDENTIALS_MAX + 4];
                size_t vl = strcspn(v, " \t");
                int n = vl <= 4 * ((CREDENTIALS_MAX + 2) / 3) + 4
                                ? auth_base64_decode(v, vl, decoded, sizeof(decoded))
                                : -EINVAL;
                bool ok = n >= 0 && equal_secret(decoded, (size_t)n, a->credentials, a->credentials_len);
                explicit_bzero(decoded, sizeof(decoded));
                if (!ok)
                        return 401;
                snprintf(principal, AUTH_PRINCIPAL_MAX, "user %.*s", (int)MIN(a->user_len, 64u),
                         a->credentials);
                return 0; /* Marathon's credentials: full access */
        }
        if (a->n_tokens > 0 && (v = scheme_value(authorization, "Bearer"))) {
                size_t vl = strcspn(v, " \t");
                const Token *found = NULL;
                /* every token is compared, so the time does not say which one matched */
                for (size_t i = 0; i < a->n_tokens; i++)
                        if (equal_secret(a->tokens[i].value, a->tokens[i].len, v, vl) && !found)
                                found = &a->tokens[i];
                if (!found)
                        return 401;
                snprintf(principal, AUTH_PRINCIPAL_MAX, "token at line %u", found->line);
                return need == AUTH_WRITE && found->access == AUTH_READ ? 403 : 0;
        }
        return 401;
}

const char *auth_challenge(const Auth *a)
{
        return a && a->credentials ? "Basic realm=\"pacer\"" : "Bearer realm=\"pacer\"";
}
