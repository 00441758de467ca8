/* State shared by the files of CEvhttpHook, not by its users. */
#ifndef GATEHOUSE_CEVHTTPHOOK_STATE_H
#define GATEHOUSE_CEVHTTPHOOK_STATE_H

/* hook.c: 1 while libevent's evhttp_parse_headers_ runs on field lines that the raw-byte head
   check (gh_head_check_fn) has read whole and found clean — no control byte but HTAB, so no
   CR or LF, in any of them. Read by fastformat.c's evhttp_add_header. */
extern __thread int gh_parsing_checked_fields;

#endif
