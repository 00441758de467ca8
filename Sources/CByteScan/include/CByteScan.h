#ifndef GATEHOUSE_CBYTESCAN_H
#define GATEHOUSE_CBYTESCAN_H
#include <stddef.h>

/* How many bytes from `bytes` are plain: neither a control byte (below 0x20) nor DEL, at most
   `count`. Thirty-two bytes a step with AVX2 when the CPU has it (checked once at start-up),
   sixteen with SSE2 otherwise (every x86-64), one byte a step elsewhere. Its callers:
   PlainBytes.prefixLength in GatehousePolicy, and the interposed evhttp_add_header (CEvhttpHook). */
size_t gh_plain_prefix(const unsigned char *bytes, size_t count);

/* The SSE2 (or byte-at-a-time) scan alone, whatever the CPU: for tests comparing the two. */
size_t gh_plain_prefix_sse2(const unsigned char *bytes, size_t count);

/* 1 when gh_plain_prefix takes the AVX2 path for runs of 32 bytes and more on this CPU. */
int gh_plain_prefix_uses_avx2(void);

/* How many bytes from `bytes` a JSON string may hold as they are: neither a control byte, DEL,
   '"' nor '\\', at most `count`. JSONLineWriter (the access log) is its caller. */
size_t gh_json_plain_prefix(const unsigned char *bytes, size_t count);

/* How many bytes from `bytes` are RFC 9110 tchar (header-name bytes), at most `count`. */
size_t gh_token_prefix(const unsigned char *bytes, size_t count);

/* How many bytes of the NUL-terminated `text` are tchar before the first that is not (the NUL
   at the latest): all of them when text[result] is the NUL. */
size_t gh_token_span(const char *text);

#endif
