/*
 * Why this file exists: every request head is checked for control bytes before evhttp parses
 * it (SPEC §3.2, RawHeadScanner), and identity and client header values are checked again as
 * they are written upstream. A head is mostly one long run of plain bytes (a 700-byte RS256
 * token, a cookie), and Swift's SIMD types do not lower to vector instructions here (a test
 * build spent 21,000 instructions a request in `SIMD.min()`); SWAR in Swift costs ~1.5
 * instructions a byte. This is ~0.5.
 */
#include "CByteScan.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

size_t gh_plain_prefix(const unsigned char *bytes, size_t count) {
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i last_control = _mm_set1_epi8(0x1F);
    const __m128i del = _mm_set1_epi8(0x7F);
    for (; i + 16 <= count; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(bytes + i));
        /* Unsigned v <= 0x1F exactly when min(v, 0x1F) == v. */
        __m128i control = _mm_cmpeq_epi8(_mm_min_epu8(v, last_control), v);
        int mask = _mm_movemask_epi8(_mm_or_si128(control, _mm_cmpeq_epi8(v, del)));
        if (mask != 0) return i + (size_t)__builtin_ctz((unsigned)mask);
    }
#endif
    for (; i < count; i++) {
        unsigned char c = bytes[i];
        if (c < 0x20 || c == 0x7F) break;
    }
    return i;
}
