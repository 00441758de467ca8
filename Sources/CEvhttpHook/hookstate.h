/* State shared by the files of CEvhttpHook, not by its users. */
#ifndef GATEHOUSE_CEVHTTPHOOK_STATE_H
#define GATEHOUSE_CEVHTTPHOOK_STATE_H

#include <stddef.h>

/* hook.c: 1 while libevent's evhttp_parse_headers_ runs on field lines that the raw-byte head
   check (gh_head_check_fn) has read whole and found clean — no control byte but HTAB, so no
   CR or LF, in any of them. Read by fastformat.c's evhttp_add_header. */
extern __thread int gh_parsing_checked_fields;

/* hook.c: the next definition of `name` after gatehouse's (libevent's), looked up once and kept
   in *slot. Racing threads store the same value. */
void *gh_next_symbol(void **slot, const char *name);

/* libevent's allocator entry points (mm-internal.h; exported by libevent 2.1, not declared in
   its public headers): what evhttp frees with mm_free must come from them. */
void *event_mm_malloc_(size_t size);
void *event_mm_calloc_(size_t count, size_t size);
void event_mm_free_(void *p);

#endif
