/*
 * Why this file exists: evhttp reads every line of a request head (the request line, each
 * field line, the empty line) and every chunk-size line with evbuffer_readln(EVBUFFER_EOL_CRLF).
 * libevent 2.1's readln finds the end with its evbuffer_ptr machinery (evbuffer_search_eol),
 * then copies the line out with evbuffer_remove — a copy and a drain — and drains the CR LF
 * with a second evbuffer_drain: two drains, each running the buffer's callbacks, ~570
 * instructions a line, four or more lines a request (deploy/bench/README.md).
 *
 * evbuffer_readln is exported by libevent and called through its PLT (see hook.c), so the
 * definition here interposes it. For EVBUFFER_EOL_CRLF it is written with libevent's public
 * evbuffer API (evbuffer_peek, evbuffer_copyout, evbuffer_drain) and keeps readln's contract:
 *
 * - a line ends at the first LF; one CR right before that LF belongs to the line end (this is
 *   what libevent's search gives: a CR not followed by LF is part of the line);
 * - the line is returned NUL-terminated in memory from libevent's allocator (event_mm_malloc_,
 *   freed by evhttp with mm_free), *n_read_out (when not NULL) set to its length without the
 *   NUL, and the line with its end drained from the buffer, in one evbuffer_drain;
 * - NULL, *n_read_out = 0 and nothing drained when there is no LF yet, when no memory could be
 *   allocated, and when the buffer's start is frozen (libevent checks the freeze first; here
 *   the drain fails and the copy is freed: the same result).
 *
 * Other end-of-line styles, and a buffer whose LF is beyond its first GH_READLN_CHAINS chains,
 * go to libevent's own function (found with dlsym(RTLD_NEXT)), as does every call when the
 * environment has GATEHOUSE_EVBUFFER_READLN=libevent (to compare the two in one sitting).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>
#include "CEvhttpHook.h"
#include "hookstate.h"

enum { GH_READLN_CHAINS = 8 };

typedef char *(*evbuffer_readln_fn)(struct evbuffer *, size_t *, enum evbuffer_eol_style);

/* 0: not decided yet, 1: this file's readln, 2: libevent's for every call. */
static int readln_mode = 0;
static void *libevent_readln = NULL;

static evbuffer_readln_fn original_readln(void) {
    return (evbuffer_readln_fn)gh_next_symbol(&libevent_readln, "evbuffer_readln");
}

static int choose_readln_mode(void) {
    const char *choice = getenv("GATEHOUSE_EVBUFFER_READLN");
    int mode = (choice != NULL && strcmp(choice, "libevent") == 0 && original_readln() != NULL) ? 2 : 1;
    __atomic_store_n(&readln_mode, mode, __ATOMIC_RELEASE);
    return mode;
}

static char *original_readln_call(struct evbuffer *buffer, size_t *n_read_out, enum evbuffer_eol_style style) {
    return original_readln()(buffer, n_read_out, style);
}

char *gh_original_readln_crlf(struct evbuffer *buffer, size_t *n_read_out) {
    return original_readln_call(buffer, n_read_out, EVBUFFER_EOL_CRLF);
}

static char *no_line(size_t *n_read_out) {
    if (n_read_out != NULL) *n_read_out = 0;
    return NULL;
}

char *gh_readln_crlf(struct evbuffer *buffer, size_t *n_read_out) {
    struct evbuffer_iovec chain[GH_READLN_CHAINS];
    /* With len -1, peek fills at most GH_READLN_CHAINS and says how many it filled. */
    const int seen = evbuffer_peek(buffer, -1, NULL, chain, GH_READLN_CHAINS);
    /* lf: the LF's offset in the buffer; before: the byte before it (0 when it is the first);
       last: the last byte of the chains searched so far (empty chains hold none). */
    size_t offset = 0, lf = 0;
    unsigned char before = 0, last = 0;
    int found = 0;
    for (int i = 0; i < seen; i++) {
        const unsigned char *start = chain[i].iov_base;
        const size_t count = chain[i].iov_len;
        if (count == 0) continue;
        const unsigned char *hit = memchr(start, '\n', count);
        if (hit != NULL) {
            lf = offset + (size_t)(hit - start);
            before = hit > start ? hit[-1] : last;
            found = 1;
            break;
        }
        last = start[count - 1];
        offset += count;
    }
    if (!found) {
        if (offset < evbuffer_get_length(buffer)) return gh_original_readln_crlf(buffer, n_read_out);  /* more chains */
        return no_line(n_read_out);
    }
    const size_t length = (lf > 0 && before == '\r') ? lf - 1 : lf;
    char *line = event_mm_malloc_(length + 1);
    if (line == NULL) return no_line(n_read_out);
    if (length <= chain[0].iov_len) {
        memcpy(line, chain[0].iov_base, length);
    } else if (evbuffer_copyout(buffer, line, length) != (ev_ssize_t)length) {
        event_mm_free_(line);
        return no_line(n_read_out);
    }
    line[length] = '\0';
    if (evbuffer_drain(buffer, lf + 1) != 0) {  /* a frozen start: nothing may be taken */
        event_mm_free_(line);
        return no_line(n_read_out);
    }
    if (n_read_out != NULL) *n_read_out = length;
    return line;
}

char *evbuffer_readln(struct evbuffer *buffer, size_t *n_read_out, enum evbuffer_eol_style style) {
    int mode = __atomic_load_n(&readln_mode, __ATOMIC_ACQUIRE);
    if (mode == 0) mode = choose_readln_mode();
    if (mode == 2 || style != EVBUFFER_EOL_CRLF) return original_readln_call(buffer, n_read_out, style);
    return gh_readln_crlf(buffer, n_read_out);
}
