/*
 * Why this file exists: libevent 2.1's evhttp answers the requests it refuses by itself
 * (head over max_headers_size, body over max_body_size, unparsable request, disallowed
 * method) with an HTML page through evhttp_send_error(), and 2.1 has no hook for it
 * (evhttp_set_errorcb arrived in 2.2). SPEC §3.1 requires one uniform JSON error for every
 * refusal, with the request id and an access-log line.
 *
 * libevent calls evhttp_send_error through its PLT, so a definition in the executable
 * interposes it. On a thread that installed a hook (each gateway worker), the hook answers;
 * everywhere else the call goes on to libevent's own function, found with dlsym(RTLD_NEXT).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include "CEvhttpHook.h"

static __thread gh_error_hook_fn hook_fn = NULL;
static __thread void *hook_ctx = NULL;

void gh_install_error_hook(gh_error_hook_fn fn, void *ctx) {
    hook_fn = fn;
    hook_ctx = ctx;
}

typedef void (*send_error_fn)(struct evhttp_request *, int, const char *);

void gh_original_send_error(struct evhttp_request *req, int error, const char *reason) {
    static send_error_fn original = NULL;
    if (original == NULL) original = (send_error_fn)dlsym(RTLD_NEXT, "evhttp_send_error");
    original(req, error, reason);
}

__attribute__((visibility("default")))
void evhttp_send_error(struct evhttp_request *req, int error, const char *reason) {
    if (hook_fn != NULL) {
        hook_fn(req, error, hook_ctx);
        return;
    }
    gh_original_send_error(req, error, reason);
}
