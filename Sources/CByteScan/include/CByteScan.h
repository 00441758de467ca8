#ifndef GATEHOUSE_CBYTESCAN_H
#define GATEHOUSE_CBYTESCAN_H
#include <stddef.h>

/* How many bytes from `bytes` are plain: neither a control byte (below 0x20) nor DEL, at most
   `count`. Sixteen bytes a step with SSE2 where the compiler targets it (every x86-64), one
   byte a step elsewhere. PlainBytes.prefixLength in GatehousePolicy is its only caller. */
size_t gh_plain_prefix(const unsigned char *bytes, size_t count);

#endif
