/* SPDX-License-Identifier: Apache-2.0 */
/* pacerctl's connection to pacer-scheduler: one libev loop, one libcurl multi
 * client (shared/http_client.h) and the request defaults (base URL, bearer
 * token, per-request timeout). client_call() turns the loop until its answer
 * is in; SIGINT/SIGTERM cancel what is in flight and are remembered so every
 * wait of the command ends. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"
#include "http_client.h"

struct ev_loop;
typedef struct Client Client;

/* The longest --url accepted. */
#define CLIENT_URL_MAX 1024
/* The longest --token accepted (bearer tokens are a few hundred bytes). */
#define CLIENT_TOKEN_MAX 4096
/* Cap on a collected answer: GET /v2/apps of 10,000 apps is a few MiB. */
#define CLIENT_BODY_MAX (64u * 1024 * 1024)

typedef struct ClientOptions {
        const char *url;    /* http(s)://host:port[/prefix]; "host:port" means http:// */
        const char *token;  /* bearer token, optional */
        int64_t timeout_ns; /* per request, > 0 */
} ClientOptions;

/* An HTTP answer, whatever its status. */
typedef struct Reply {
        long status;
        Buf body;
        Buf headers; /* raw "Name: value\r\n" lines */
} Reply;

/* Validates the options (-EINVAL with err saying what is wrong with the URL or
 * token) and sets up the loop, the HTTP client and the signal watchers. */
int client_new(const ClientOptions *o, Client **ret, PacerError *err);
Client *client_free(Client *c);

struct ev_loop *client_loop(Client *c);
HttpClient *client_http(Client *c);
/* The base URL as normalised (no trailing slash), for messages. */
const char *client_base_url(const Client *c);
bool client_has_token(const Client *c);
int64_t client_timeout(const Client *c);
/* Base URL + path, allocated. */
char *client_url(const Client *c, const char *path);
/* Fills ret_headers[] (NULL-terminated, at most n entries with the NULL)
 * with the Authorization header when there is a token, then extra[]
 * (NULL-terminated). The strings are borrowed. -E2BIG when they do not fit. */
int client_headers(const Client *c, const char *const *extra, size_t n, const char **ret_headers);

/* Sends one request (body: JSON, may be NULL) and turns the loop until the
 * answer is in. Returns 0 and fills *ret for any HTTP answer; a negative errno
 * as http_client.h defines them when none arrived (-EINTR when interrupted),
 * with client_error() saying why. */
int client_call(Client *c, const char *method, const char *path, const char *body, size_t body_len,
                Reply *ret);
/* Why the last failed call got no answer: "Connection refused", "no answer
 * within 10s", "Could not resolve host: x", ... */
const char *client_error(const Client *c);
/* Records a transport failure of a request made outside client_call() (the
 * event stream), so client_error() describes it. */
void client_set_error(Client *c, int result, const char *detail);

/* True once SIGINT or SIGTERM arrived. */
bool client_interrupted(const Client *c);
/* Turns the loop until *flag is true (0), timeout_ns passed (-ETIME; 0 = no
 * limit), a signal arrived (-EINTR) or nothing is left that could set it
 * (-EDEADLK). */
int client_wait(Client *c, const bool *flag, int64_t timeout_ns);

void client_reply_done(Reply *r);
/* The value of a response header (see http_response_header()). */
const char *client_reply_header(const Reply *r, const char *name, char *buf, size_t size);
