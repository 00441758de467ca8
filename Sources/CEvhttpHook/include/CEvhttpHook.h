#ifndef GATEHOUSE_CEVHTTPHOOK_H
#define GATEHOUSE_CEVHTTPHOOK_H

#include <stdarg.h>
#include <stddef.h>

struct evhttp_request;
struct evbuffer;

/* The handler that answers the errors evhttp makes by itself (oversize head or body,
   malformed request, disallowed method) on the calling thread's event loop.
   Each worker thread installs its own; other threads keep libevent's behaviour. */
typedef void (*gh_error_hook_fn)(struct evhttp_request *req, int code, void *ctx);

void gh_install_error_hook(gh_error_hook_fn fn, void *ctx);

/* libevent's own evhttp_send_error, for callers that want it. */
void gh_original_send_error(struct evhttp_request *req, int error, const char *reason);

/* The raw-byte check of a request head (SPEC §3.2), process-wide: called with a client
   connection's input buffer before evhttp reads the request line (request_line = 1: check
   that line) or the field lines (request_line = 0: check them up to the empty line).
   Returns 0 when every byte in the buffer up to the head's end was checked and nothing is
   wrong so far, 1 when the bytes could not all be read (nothing refused: evhttp's own checks
   apply), -1 to refuse the head (evhttp then answers 400). After 0 for field lines, the
   interposed evhttp_add_header skips its own control-byte scan of the values evhttp parses
   from them: the check refused every control byte but HTAB there. */
typedef int (*gh_head_check_fn)(struct evbuffer *input, int request_line);

void gh_install_head_check(gh_head_check_fn fn);

/* What a worker learns about a request head as evhttp reads it, on its own loop. */
enum {
    GH_HEAD_PARTIAL = 0,  /* part of a head has arrived, not all of it */
    GH_HEAD_COMPLETE = 1  /* the head is parsed; evhttp reads the body (if any) next */
};
typedef void (*gh_head_event_fn)(struct evhttp_request *req, int event, void *ctx);

void gh_install_head_event_hook(gh_head_event_fn fn, void *ctx);

/* fastformat.c: the formatter behind the interposed evbuffer_add_printf, for unit tests.
   Appends what evbuffer_add_printf(buf, fmt, ...) would and returns its result, or -2 when
   fmt is not one of the formats it writes itself (libevent's vprintf then does). */
int gh_format_for_test(struct evbuffer *buf, const char *fmt, va_list ap);

/* fastformat.c: sscanf(s, format, major, minor, ch) through the interposed sscanf, for tests. */
int gh_scan_for_test(const char *s, const char *format, int *major, int *minor, char *ch);

/* fastformat.c: libevent's own evhttp_find_header (the interposed one is gatehouse's), for tests. */
struct evkeyvalq;
const char *gh_original_find_header(const struct evkeyvalq *headers, const char *key);

/* fastformat.c: libevent's own evhttp_add_header (the interposed one is gatehouse's), for tests. */
int gh_original_add_header(struct evkeyvalq *headers, const char *key, const char *value);

/* socketread.c: the interposed evbuffer_read's own path (no ioctl(FIONREAD)), for tests. */
int gh_evbuffer_read_direct(struct evbuffer *buf, int fd, int howmuch);

/* readline.c: the interposed evbuffer_readln's EVBUFFER_EOL_CRLF path, and libevent's own
   evbuffer_readln with that style, for tests. */
char *gh_readln_crlf(struct evbuffer *buffer, size_t *n_read_out);
char *gh_original_readln_crlf(struct evbuffer *buffer, size_t *n_read_out);

/* allocator.c: libevent's allocator (event_set_mem_functions), per-thread size-class lists.
   gh_install_event_allocator must run before any other libevent call of the process. */
void gh_install_event_allocator(void);
void *gh_event_malloc(size_t size);
void *gh_event_realloc(void *p, size_t size);
void gh_event_free(void *p);
/* Blocks on the calling thread's free lists (for tests). */
size_t gh_event_cached_blocks(void);

#endif
