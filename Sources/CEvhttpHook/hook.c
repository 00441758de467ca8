/*
 * Why this file exists: libevent 2.1's evhttp has no hook for the moments gatehouse must act
 * in (evhttp_set_errorcb and evhttp_set_newreqcb arrived in 2.2):
 *
 * - evhttp answers the requests it refuses by itself (head over max_headers_size, body over
 *   max_body_size, unparsable request, disallowed method) with an HTML page through
 *   evhttp_send_error(). SPEC §3.1 requires one uniform JSON error for every refusal, with the
 *   request id and an access-log line.
 * - evhttp parses a request head with evhttp_parse_firstline_() and evhttp_parse_headers_(),
 *   which append an obs-fold continuation line to the previous value as it is (CR, VT and all)
 *   and cut a value at a NUL. SPEC §3.2 refuses both, so the raw bytes are checked first.
 * - Between the head and the body there is no callback: the body is read before the request
 *   is handed over. SPEC §3.2 wants the decision first, so the worker is told when a head is
 *   complete (and when one has started, for server.header_timeout).
 *
 * libevent calls all three functions through its PLT (they are exported, and libevent is
 * built without -Bsymbolic), so a definition in the executable interposes them — for every
 * call, whatever bufferevent callbacks evhttp has set and whether its read was deferred. On a
 * thread that installed a hook (each gateway worker), the hook acts; the raw-byte check runs
 * on every thread once installed; everything else goes on to libevent's own function, found
 * with dlsym(RTLD_NEXT).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <sys/queue.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>
#include "CEvhttpHook.h"
#include "hookstate.h"

/* libevent's enum message_read_status (http-internal.h, 2.1.12). */
enum { GH_ALL_DATA_READ = 1, GH_MORE_DATA_EXPECTED = 0, GH_DATA_CORRUPTED = -1 };

static __thread gh_error_hook_fn hook_fn = NULL;
static __thread void *hook_ctx = NULL;
static __thread gh_head_event_fn head_event_fn = NULL;
static __thread void *head_event_ctx = NULL;
static gh_head_check_fn head_check_fn = NULL;

void gh_install_error_hook(gh_error_hook_fn fn, void *ctx) {
    hook_fn = fn;
    hook_ctx = ctx;
}

void gh_install_head_event_hook(gh_head_event_fn fn, void *ctx) {
    head_event_fn = fn;
    head_event_ctx = ctx;
}

void gh_install_head_check(gh_head_check_fn fn) {
    __atomic_store_n(&head_check_fn, fn, __ATOMIC_RELEASE);
}

typedef void (*send_error_fn)(struct evhttp_request *, int, const char *);
typedef int (*parse_fn)(struct evhttp_request *, struct evbuffer *);

void *gh_next_symbol(void **slot, const char *name) {
    void *fn = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (fn == NULL) {
        fn = dlsym(RTLD_NEXT, name);
        __atomic_store_n(slot, fn, __ATOMIC_RELEASE);
    }
    return fn;
}

void gh_original_send_error(struct evhttp_request *req, int error, const char *reason) {
    static void *slot = NULL;
    ((send_error_fn)gh_next_symbol(&slot, "evhttp_send_error"))(req, error, reason);
}

__attribute__((visibility("default")))
void evhttp_send_error(struct evhttp_request *req, int error, const char *reason) {
    if (hook_fn != NULL) {
        hook_fn(req, error, hook_ctx);
        return;
    }
    gh_original_send_error(req, error, reason);
}

/* -1: refused; 0: every byte up to the head's end checked, clean; 1: not (all) checked. */
static int check_head(struct evbuffer *input, int request_line) {
    gh_head_check_fn check = __atomic_load_n(&head_check_fn, __ATOMIC_ACQUIRE);
    if (check == NULL) return 1;
    int verdict = check(input, request_line);
    return verdict < 0 ? -1 : verdict == 0 ? 0 : 1;
}

__thread int gh_parsing_checked_fields = 0;

/* The request line (and the status line of a response, left alone). */
__attribute__((visibility("default")))
int evhttp_parse_firstline_(struct evhttp_request *req, struct evbuffer *buffer) {
    static void *slot = NULL;
    parse_fn parse = (parse_fn)gh_next_symbol(&slot, "evhttp_parse_firstline_");
    if (req->kind != EVHTTP_REQUEST) return parse(req, buffer);
    if (check_head(buffer, 1) < 0) return GH_DATA_CORRUPTED;
    int status = parse(req, buffer);
    /* Only once a byte of the head is here: an idle keep-alive connection is read_timeout's. */
    if (status == GH_MORE_DATA_EXPECTED && head_event_fn != NULL && evbuffer_get_length(buffer) > 0)
        head_event_fn(req, GH_HEAD_PARTIAL, head_event_ctx);
    return status;
}

/* The field lines of a request head, or the trailer section after a chunked request body.
   Trailer fields are checked the same way, then dropped (RFC 9110 §6.5.1): evhttp would add
   them to the request's headers, where they would count as headers the decision never saw. */
__attribute__((visibility("default")))
int evhttp_parse_headers_(struct evhttp_request *req, struct evbuffer *buffer) {
    static void *slot = NULL;
    parse_fn parse = (parse_fn)gh_next_symbol(&slot, "evhttp_parse_headers_");
    if (req->kind != EVHTTP_REQUEST) return parse(req, buffer);
    const int verdict = check_head(buffer, 0);
    if (verdict < 0) return GH_DATA_CORRUPTED;
    /* Every line parse reads now was checked: evhttp_add_header need not scan the values. */
    gh_parsing_checked_fields = verdict == 0;
    if (req->chunked) {
        struct evkeyvalq *headers = req->input_headers;
        struct evkeyvalq trailer;
        TAILQ_INIT(&trailer);
        req->input_headers = &trailer;
        int status = parse(req, buffer);
        gh_parsing_checked_fields = 0;
        req->input_headers = headers;
        evhttp_clear_headers(&trailer);
        return status;
    }
    int status = parse(req, buffer);
    gh_parsing_checked_fields = 0;
    if (head_event_fn != NULL) {
        if (status == GH_MORE_DATA_EXPECTED) head_event_fn(req, GH_HEAD_PARTIAL, head_event_ctx);
        else if (status == GH_ALL_DATA_READ) head_event_fn(req, GH_HEAD_COMPLETE, head_event_ctx);
    }
    return status;
}
