/*
 * Why this file exists: every request head is checked for control bytes before evhttp parses
 * it (SPEC §3.2, RawHeadScanner), and identity and client header values are checked again as
 * they are written upstream. A head is mostly one long run of plain bytes (a 700-byte RS256
 * token, a cookie), and Swift's SIMD types do not lower to vector instructions here (a test
 * build spent 21,000 instructions a request in `SIMD.min()`); SWAR in Swift costs ~1.5
 * instructions a byte. SSE2 is ~0.7; AVX2, where the CPU has it, ~0.35 on long runs. Short
 * values (most header values) take two 8-byte words instead of a loop over bytes, and no scan
 * ends in a loop over the last bytes: its last step overlaps the one before. The access log's
 * JSON strings are scanned the same way for the bytes they must escape (gh_json_plain_prefix).
 */
#include "CByteScan.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <cpuid.h>
#include <immintrin.h>
#define GH_HAVE_AVX2_PATH 1
#endif

/* Bit i set when byte i of the 16 at `v` is a control byte or DEL. */
#if defined(__SSE2__)
static inline unsigned bad_bytes_16(__m128i v) {
    const __m128i last_control = _mm_set1_epi8(0x1F);
    const __m128i del = _mm_set1_epi8(0x7F);
    /* Unsigned v <= 0x1F exactly when min(v, 0x1F) == v. */
    __m128i control = _mm_cmpeq_epi8(_mm_min_epu8(v, last_control), v);
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(control, _mm_cmpeq_epi8(v, del)));
}
#endif

/* Under 16 bytes (most header values): 8 bytes a step as one 64-bit word (SWAR), the last
   word overlapping the one before. `(x - 0x20…) & ~x & 0x80…` has its lowest set bit in the
   first byte below 0x20 (a borrow can only mark bytes after it), the same with `x ^ 0x7F…`
   for DEL, and bytes of 0x80 and above are never marked. */
static inline unsigned long long bad_bytes_8(const unsigned char *at) {
    unsigned long long x;
    __builtin_memcpy(&x, at, 8);
    const unsigned long long ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    unsigned long long del = x ^ (0x7F * ones);
    return (((x - 0x20 * ones) & ~x) | ((del - ones) & ~del)) & highs;
}

/* The two scans' steps, for any test of a byte (`bad1`), of 8 bytes as a word (`bad8`) and of
   16 as a vector (`bad16`): always inlined, so each scan gets its own copy with its tests in
   place. */
typedef unsigned long long (*bad_word_fn)(const unsigned char *);
typedef int (*bad_byte_fn)(unsigned char);

/* Under 16 bytes: a byte loop under 8, else two 64-bit words, the last overlapping the first. */
static inline __attribute__((always_inline)) size_t
prefix_short(const unsigned char *bytes, size_t count, bad_word_fn bad8, bad_byte_fn bad1) {
#if defined(__x86_64__) || defined(__aarch64__)  /* little-endian: byte i is bits 8i…8i+7 */
    if (count >= 8) {
        unsigned long long bad = bad8(bytes);
        if (bad != 0) return (size_t)__builtin_ctzll(bad) / 8;
        size_t last = count - 8;  /* bytes last…7 were checked clean just now */
        bad = bad8(bytes + last);
        if (bad != 0) return last + (size_t)__builtin_ctzll(bad) / 8;
        return count;
    }
#endif
    size_t i = 0;
    while (i < count && !bad1(bytes[i])) i++;
    return i;
}

#if defined(__SSE2__)
typedef unsigned (*bad_vector_fn)(__m128i);

/* 16 bytes and more: 16 a step, the last step overlapping the one before. */
static inline __attribute__((always_inline)) size_t
prefix_16(const unsigned char *bytes, size_t count, bad_vector_fn bad16) {
    size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        unsigned bad = bad16(_mm_loadu_si128((const __m128i *)(bytes + i)));
        if (bad != 0) return i + (size_t)__builtin_ctz(bad);
    }
    if (i == count) return count;
    /* The last 16 bytes, overlapping clean ones: drop the bits of bytes last…i-1. */
    size_t last = count - 16;
    unsigned bad = bad16(_mm_loadu_si128((const __m128i *)(bytes + last))) >> (i - last);
    return bad != 0 ? i + (size_t)__builtin_ctz(bad) : count;
}
#endif

static inline int control_or_del(unsigned char c) { return c < 0x20 || c == 0x7F; }

static size_t plain_prefix_short(const unsigned char *bytes, size_t count) {
    return prefix_short(bytes, count, bad_bytes_8, control_or_del);
}

size_t gh_plain_prefix_sse2(const unsigned char *bytes, size_t count) {
#if defined(__SSE2__)
    if (count >= 16) return prefix_16(bytes, count, bad_bytes_16);
#endif
    return plain_prefix_short(bytes, count);
}

#if defined(GH_HAVE_AVX2_PATH)
/* The same test 32 bytes a step, for runs of 32 bytes and more. */
__attribute__((target("avx2")))
static inline unsigned bad_bytes_32(__m256i v) {
    const __m256i last_control = _mm256_set1_epi8(0x1F);
    const __m256i del = _mm256_set1_epi8(0x7F);
    __m256i control = _mm256_cmpeq_epi8(_mm256_min_epu8(v, last_control), v);
    return (unsigned)_mm256_movemask_epi8(_mm256_or_si256(control, _mm256_cmpeq_epi8(v, del)));
}

__attribute__((target("avx2")))
static size_t plain_prefix_avx2(const unsigned char *bytes, size_t count) {
    size_t i = 0;
    for (; i + 32 <= count; i += 32) {
        unsigned bad = bad_bytes_32(_mm256_loadu_si256((const __m256i *)(bytes + i)));
        if (bad != 0) return i + (size_t)__builtin_ctz(bad);
    }
    if (i == count) return count;
    size_t last = count - 32;
    unsigned bad = bad_bytes_32(_mm256_loadu_si256((const __m256i *)(bytes + last))) >> (i - last);
    return bad != 0 ? i + (size_t)__builtin_ctz(bad) : count;
}

/* AVX2 may be used when the CPU has it (CPUID leaf 7, EBX bit 5) and the kernel saves the YMM
   registers (OSXSAVE, and XCR0 bits 1 and 2). Decided once, before main. */
static int use_avx2;

static int cpu_has_avx2(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & bit_OSXSAVE) || !(c & bit_AVX)) return 0;
    unsigned xcr0_low, xcr0_high;
    __asm__("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
    if ((xcr0_low & 0x6) != 0x6) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b & bit_AVX2) != 0;
}

__attribute__((constructor))
static void choose_plain_prefix(void) { use_avx2 = cpu_has_avx2(); }
#endif

int gh_plain_prefix_uses_avx2(void) {
#if defined(GH_HAVE_AVX2_PATH)
    return use_avx2;
#else
    return 0;
#endif
}

size_t gh_plain_prefix(const unsigned char *bytes, size_t count) {
#if defined(GH_HAVE_AVX2_PATH)
    if (count >= 32 && use_avx2) return plain_prefix_avx2(bytes, count);
#endif
    return gh_plain_prefix_sse2(bytes, count);
}

/* JSON string text (the access log): bytes a JSON string may hold as they are, i.e. neither a
   control byte, DEL, '"' nor '\\' — the bytes JSONLineWriter escapes. The same steps as the
   scan above: a byte loop under 8 bytes, two 64-bit words under 16, then 16 bytes a step with
   an overlapping last step (log values are short: no AVX2 path). */
static inline unsigned long long json_bad_bytes_8(const unsigned char *at) {
    unsigned long long x;
    __builtin_memcpy(&x, at, 8);
    const unsigned long long ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    unsigned long long del = x ^ (0x7F * ones), quote = x ^ (0x22 * ones), backslash = x ^ (0x5C * ones);
    return (((x - 0x20 * ones) & ~x) | ((del - ones) & ~del) | ((quote - ones) & ~quote)
            | ((backslash - ones) & ~backslash)) & highs;
}

#if defined(__SSE2__)
static inline unsigned json_bad_bytes_16(__m128i v) {
    __m128i special = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(0x22)), _mm_cmpeq_epi8(v, _mm_set1_epi8(0x5C)));
    return bad_bytes_16(v) | (unsigned)_mm_movemask_epi8(special);
}
#endif

static inline int json_escaped(unsigned char c) { return c < 0x20 || c == 0x7F || c == 0x22 || c == 0x5C; }

size_t gh_json_plain_prefix(const unsigned char *bytes, size_t count) {
#if defined(__SSE2__)
    if (count >= 16) return prefix_16(bytes, count, json_bad_bytes_16);
#endif
    return prefix_short(bytes, count, json_bad_bytes_8, json_escaped);
}

/* RFC 9110 §5.6.2 tchar: "!#$%&'*+-.^_`|~", digits and letters. Header names are checked for
   it on every request (RequestHead, the upstream head): a table lookup a byte, ~4 instructions,
   where Swift's test of two 64-bit masks took ~11. The one definition of tchar for header
   names; PlainBytesTests checks it against the RFC's list for every byte. */
static const unsigned char token_byte[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
};

size_t gh_token_prefix(const unsigned char *bytes, size_t count) {
    size_t i = 0;
    while (i < count && token_byte[bytes[i]]) i++;
    return i;
}

size_t gh_token_span(const char *text) {
    const unsigned char *bytes = (const unsigned char *)text;
    size_t i = 0;
    while (token_byte[bytes[i]]) i++;  /* NUL is not tchar: the end stops it */
    return i;
}
