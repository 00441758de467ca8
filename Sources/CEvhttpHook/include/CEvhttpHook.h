#ifndef GATEHOUSE_CEVHTTPHOOK_H
#define GATEHOUSE_CEVHTTPHOOK_H

struct evhttp_request;

/* The handler that answers the errors evhttp makes by itself (oversize head or body,
   malformed request, disallowed method) on the calling thread's event loop.
   Each worker thread installs its own; other threads keep libevent's behaviour. */
typedef void (*gh_error_hook_fn)(struct evhttp_request *req, int code, void *ctx);

void gh_install_error_hook(gh_error_hook_fn fn, void *ctx);

/* libevent's own evhttp_send_error, for callers that want it. */
void gh_original_send_error(struct evhttp_request *req, int error, const char *reason);

#endif
