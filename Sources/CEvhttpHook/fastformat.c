/*
 * Why this file exists: evhttp writes every response head with evbuffer_add_printf — the
 * status line, then one call per header line ("%s: %s\r\n") — and the chunk-size lines of a
 * chunked body ("%x\r\n"); each call is a vfprintf into a scratch buffer, then a copy. It also
 * formats a Date header for every response (gmtime_r + snprintf). Together that is the
 * largest single cost of a proxied request in user space (deploy/bench/README.md).
 *
 * Both functions are exported by libevent and called through its PLT (see hook.c), so the
 * definitions here interpose them. They produce exactly the bytes libevent's would, and hand
 * every other format to libevent's evbuffer_add_vprintf unchanged:
 *
 * - evbuffer_add_printf: the three formats of http.c above are written with memcpy into one
 *   evbuffer_add; anything else goes to evbuffer_add_vprintf.
 * - evutil_date_rfc1123 with tm == NULL (the current time, as evhttp asks): the text is
 *   formatted once per second and thread, by libevent's own function, and copied from then on.
 *
 * - evutil_ascii_strcasecmp (every evhttp_find_header compares each header name with it, a
 *   function call per character in libevent): the same result with the folding inlined.
 * - evhttp_find_header (about 20 lookups per proxied request, evhttp's own and gatehouse's,
 *   each comparing every header's name with a call): a name whose first byte differs, ASCII
 *   case folded, is passed over without one. The same first match as libevent's.
 * - evhttp_add_header (every request header line evhttp parses, and every header gatehouse
 *   adds): the value measured once and scanned with gh_plain_prefix instead of strpbrk, then copied
 *   with its known length. A field with a control byte goes to libevent's own function.
 * - sscanf with evhttp's version format "HTTP/%d.%d%c" (every request line): the version
 *   "HTTP/" digit "." digit and nothing more is read directly; anything else goes to glibc.
 *
 * gh_format_for_test exposes the formatter so that unit tests compare it with vprintf for
 * every kind of argument.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/queue.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include "CEvhttpHook.h"
#include "CByteScan.h"
#include "hookstate.h"

static const char HEADER_LINE[] = "%s: %s\r\n";
static const char STATUS_LINE[] = "HTTP/%d.%d %d %s\r\n";
static const char CHUNK_LINE[] = "%x\r\n";

/* Writes the decimal digits of v (any int) at p; returns how many. */
static size_t put_int(char *p, int v) {
    char tmp[12];
    size_t n = 0;
    unsigned int u = v < 0 ? 0u - (unsigned int)v : (unsigned int)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    size_t len = 0;
    if (v < 0) p[len++] = '-';
    while (n > 0) p[len++] = tmp[--n];
    return len;
}

static size_t put_hex(char *p, unsigned int u) {
    static const char digits[] = "0123456789abcdef";
    char tmp[8];
    size_t n = 0;
    do {
        tmp[n++] = digits[u & 15];
        u >>= 4;
    } while (u != 0);
    size_t len = 0;
    while (n > 0) p[len++] = tmp[--n];
    return len;
}

/* Adds the pieces as one evbuffer_add when they fit a stack buffer, else piece by piece. */
static int add_pieces(struct evbuffer *buf, const char *const *piece, const size_t *len, int count) {
    size_t total = 0;
    for (int i = 0; i < count; i++) total += len[i];
    if (total > 0x7fffffff) return -1;
    char line[512];
    if (total <= sizeof(line)) {
        size_t at = 0;
        for (int i = 0; i < count; i++) {
            memcpy(line + at, piece[i], len[i]);
            at += len[i];
        }
        return evbuffer_add(buf, line, total) == 0 ? (int)total : -1;
    }
    if (evbuffer_expand(buf, total) != 0) return -1;
    for (int i = 0; i < count; i++) {
        if (evbuffer_add(buf, piece[i], len[i]) != 0) return -1;
    }
    return (int)total;
}

/* The formats above written directly; 1 with *result set when handled, 0 otherwise. */
static int format_known(struct evbuffer *buf, const char *fmt, va_list ap, int *result) {
    if (strcmp(fmt, HEADER_LINE) == 0) {
        const char *key = va_arg(ap, const char *);
        const char *value = va_arg(ap, const char *);
        if (key == NULL || value == NULL) return 0;
        const char *piece[] = { key, ": ", value, "\r\n" };
        size_t len[] = { strlen(key), 2, strlen(value), 2 };
        *result = add_pieces(buf, piece, len, 4);
        return 1;
    }
    if (strcmp(fmt, STATUS_LINE) == 0) {
        int major = va_arg(ap, int), minor = va_arg(ap, int), code = va_arg(ap, int);
        const char *phrase = va_arg(ap, const char *);
        if (phrase == NULL) return 0;
        char numbers[48];
        size_t at = 0;
        memcpy(numbers, "HTTP/", 5);
        at = 5;
        at += put_int(numbers + at, major);
        numbers[at++] = '.';
        at += put_int(numbers + at, minor);
        numbers[at++] = ' ';
        at += put_int(numbers + at, code);
        numbers[at++] = ' ';
        const char *piece[] = { numbers, phrase, "\r\n" };
        size_t len[] = { at, strlen(phrase), 2 };
        *result = add_pieces(buf, piece, len, 3);
        return 1;
    }
    if (strcmp(fmt, CHUNK_LINE) == 0) {
        char line[16];
        size_t at = put_hex(line, va_arg(ap, unsigned int));
        line[at++] = '\r';
        line[at++] = '\n';
        *result = evbuffer_add(buf, line, at) == 0 ? (int)at : -1;
        return 1;
    }
    return 0;
}

int gh_format_for_test(struct evbuffer *buf, const char *fmt, va_list ap) {
    va_list copy;
    va_copy(copy, ap);
    int result = 0;
    int handled = format_known(buf, fmt, copy, &result);
    va_end(copy);
    return handled ? result : -2;
}

__attribute__((visibility("default")))
int evbuffer_add_printf(struct evbuffer *buf, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    va_list copy;
    va_copy(copy, ap);
    int result = 0;
    if (!format_known(buf, fmt, copy, &result)) result = evbuffer_add_vprintf(buf, fmt, ap);
    va_end(copy);
    va_end(ap);
    return result;
}

typedef int (*date_fn)(char *, size_t, const struct tm *);

static int original_date(char *date, size_t datelen, const struct tm *tm) {
    static void *slot = NULL;
    void *fn = __atomic_load_n(&slot, __ATOMIC_ACQUIRE);
    if (fn == NULL) {
        fn = dlsym(RTLD_NEXT, "evutil_date_rfc1123");
        __atomic_store_n(&slot, fn, __ATOMIC_RELEASE);
    }
    return ((date_fn)fn)(date, datelen, tm);
}

static __thread time_t date_second = (time_t)-1;
static __thread char date_text[64];
static __thread int date_length = -1;

__attribute__((visibility("default")))
int evutil_date_rfc1123(char *date, const size_t datelen, const struct tm *tm) {
    if (tm != NULL) return original_date(date, datelen, tm);
    time_t now = time(NULL);
    if (now != date_second || date_length < 0) {
        struct tm parts;
        if (gmtime_r(&now, &parts) == NULL) return original_date(date, datelen, NULL);
        date_length = original_date(date_text, sizeof(date_text), &parts);
        if (date_length < 0 || (size_t)date_length >= sizeof(date_text)) {
            date_length = -1;
            return original_date(date, datelen, NULL);
        }
        date_second = now;
    }
    if (datelen > 0) {
        size_t n = (size_t)date_length < datelen ? (size_t)date_length : datelen - 1;
        memcpy(date, date_text, n);
        date[n] = '\0';
    }
    return date_length;
}

/* libevent's evutil_ascii_strcasecmp: ASCII letters folded to lower case, the result -1, 0 or 1
   from comparing the folded bytes as (signed) char. */
static inline char fold(char c) {
    return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
}

__attribute__((visibility("default")))
int evutil_ascii_strcasecmp(const char *s1, const char *s2) {
    for (;;) {
        char c1 = fold(*s1++), c2 = fold(*s2++);
        if (c1 < c2) return -1;
        if (c1 > c2) return 1;
        if (c1 == 0) return 0;
    }
}

/* libevent's evhttp_find_header (http.c): the value of the first field whose name equals `key`
   ignoring ASCII case, or NULL. `| 0x20` maps two bytes that fold equal to the same byte (it is
   the folding for letters and leaves the others apart only where they already differ), so the
   first-byte test rules out no name that compares equal. */
static inline int same_name(const unsigned char *a, const unsigned char *b) {
    for (;; a++, b++) {
        const unsigned char x = *a, y = *b;
        if (x == y) {  /* names are mostly written alike: a byte equal as it is costs no folding */
            if (x == 0) return 1;
            continue;
        }
        /* Equal folded only as the two cases of one letter. */
        if ((x ^ y) != 0x20 || (unsigned char)((x | 0x20) - 'a') > 'z' - 'a') return 0;
    }
}

__attribute__((visibility("default")))
const char *evhttp_find_header(const struct evkeyvalq *headers, const char *key) {
    const unsigned char *wanted = (const unsigned char *)key;
    const unsigned char first = wanted[0] | 0x20;
    for (struct evkeyval *header = headers->tqh_first; header != NULL; header = header->next.tqe_next) {
        const unsigned char *name = (const unsigned char *)header->key;
        if ((name[0] | 0x20) == first && same_name(name, wanted)) return header->value;
    }
    return NULL;
}

/* libevent's own evhttp_find_header, for tests. */
const char *gh_original_find_header(const struct evkeyvalq *headers, const char *key) {
    typedef const char *(*find_fn)(const struct evkeyvalq *, const char *);
    static find_fn original_find = NULL;
    if (original_find == NULL) original_find = (find_fn)dlsym(RTLD_NEXT, "evhttp_find_header");
    return original_find(headers, key);
}

/* libevent's evhttp_add_header (http.c): -1 for a field with a CR or LF in its name or value
   (Debian's 2.1.12 refuses any; upstream's 2.1.12 source lets an obs-fold CR/LF + space or tab
   through), otherwise a copy of both appended to `headers`. libevent checks the value with
   strpbrk(value, "\r\n") — SSE4.2 string instructions, ~0.8 instructions a byte — and then
   measures it again in strdup; evhttp calls it for every request header line, and a Bearer
   token's line is ~700 bytes. Here the value is measured once and scanned for control bytes 32
   at a time (gh_plain_prefix), and copied with its known length from libevent's allocator
   (event_mm_calloc_, event_mm_malloc_) as event_mm_strdup_ copies. A name with CR or LF, or a
   value with any control byte or DEL (a tab, say), goes to libevent's own function, so whatever
   the build's rule for those, it is the rule applied. The values evhttp parses from field lines
   the raw-byte head check has read and passed (hook.c) are not scanned again: that check
   refused every control byte but HTAB in them. */
typedef int (*add_header_fn)(struct evkeyvalq *, const char *, const char *);

/* libevent's own evhttp_add_header (also for tests). */
int gh_original_add_header(struct evkeyvalq *headers, const char *key, const char *value) {
    static void *slot = NULL;
    return ((add_header_fn)gh_next_symbol(&slot, "evhttp_add_header"))(headers, key, value);
}

__attribute__((visibility("default")))
int evhttp_add_header(struct evkeyvalq *headers, const char *key, const char *value) {
    const size_t key_length = strcspn(key, "\r\n");  /* names are short: one string instruction or two */
    const size_t value_length = strlen(value);
    /* A field evhttp parses from checked lines has neither (hook.c): no scan of its value. */
    if (key[key_length] != 0
        || (!gh_parsing_checked_fields && gh_plain_prefix((const unsigned char *)value, value_length) != value_length))
        return gh_original_add_header(headers, key, value);
    struct evkeyval *header = event_mm_calloc_(1, sizeof *header);
    if (header == NULL) return -1;
    header->key = event_mm_malloc_(key_length + 1);
    header->value = event_mm_malloc_(value_length + 1);
    if (header->key == NULL || header->value == NULL) {
        event_mm_free_(header->key);
        event_mm_free_(header->value);
        event_mm_free_(header);
        return -1;
    }
    memcpy(header->key, key, key_length + 1);
    memcpy(header->value, value, value_length + 1);
    TAILQ_INSERT_TAIL(headers, header, next);
    return 0;
}

int __isoc99_vsscanf(const char *s, const char *format, va_list ap);

static const char VERSION_FORMAT[] = "HTTP/%d.%d%c";

__attribute__((visibility("default")))
int __isoc99_sscanf(const char *s, const char *format, ...) {
    va_list ap;
    va_start(ap, format);
    int result;
    if (strcmp(format, VERSION_FORMAT) == 0 && strncmp(s, "HTTP/", 5) == 0
        && s[5] >= '0' && s[5] <= '9' && s[6] == '.' && s[7] >= '0' && s[7] <= '9' && s[8] == '\0') {
        int *major = va_arg(ap, int *), *minor = va_arg(ap, int *);
        *major = s[5] - '0';
        *minor = s[7] - '0';
        result = 2;
    } else {
        result = __isoc99_vsscanf(s, format, ap);
    }
    va_end(ap);
    return result;
}

int gh_scan_for_test(const char *s, const char *format, int *major, int *minor, char *ch) {
    return __isoc99_sscanf(s, format, major, minor, ch);
}
