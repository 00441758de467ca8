/*
 * Why this file exists: libevent allocates about 41 blocks per proxied request and frees them
 * again before the next one (the request, its two header lists, one key and one value per
 * header, the URI, evbuffer chains). Through glibc's malloc each pair costs ~200 instructions,
 * about a tenth of the gateway's user-space work per request (deploy/bench/README.md).
 *
 * event_set_mem_functions is libevent's own way to give it another allocator. This one keeps,
 * per thread, a free list for each of a few size classes: a block freed on a thread is reused
 * by the next allocation of its class on that thread, without a lock. Every block is a plain
 * glibc block of exactly its class's size, with no header of ours; the class of a block is
 * found from malloc_usable_size. So
 * - a block may be freed on any thread (it joins that thread's list: the blocks of a class
 *   are interchangeable), and blocks glibc made before this allocator was installed are
 *   handled like any other;
 * - the classes step by 16 bytes up to 256 and more coarsely up to 4 KiB, so a live block
 *   (a connection's buffers and structures) wastes little over glibc's own rounding;
 * - what a thread keeps is bounded: at most LIST_BYTES per class, the rest goes back to
 *   glibc's free; so do a thread's lists when it ends, and every block over 4 KiB at once.
 *
 * Memory that libevent hands out must be freed by libevent (event_mm_free_), never with free():
 * gatehouse frees no libevent-allocated memory itself (docs/libevent.md).
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>
#include "CEvhttpHook.h"

enum { FINE_CLASSES = 16, CLASS_COUNT = 26, LARGE = CLASS_COUNT, LIST_BYTES = 64 * 1024 };

/* Usable sizes: 16, 32, ... 256, then coarser; evbuffer chains are powers of two from 1024. */
static const size_t class_size[CLASS_COUNT] = {
    16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256,
    320, 384, 448, 512, 640, 768, 896, 1024, 2048, 4096,
};

typedef struct free_block { struct free_block *next; } free_block;

typedef struct thread_cache {
    free_block *head[CLASS_COUNT];
    uint32_t count[CLASS_COUNT];
    int registered;
} thread_cache;

static __thread thread_cache cache;
static pthread_key_t cache_key;
static pthread_once_t cache_key_once = PTHREAD_ONCE_INIT;

/* At thread exit: the thread's lists go back to glibc. */
static void release_cache(void *unused) {
    (void)unused;
    for (int c = 0; c < CLASS_COUNT; c++) {
        free_block *b = cache.head[c];
        while (b != NULL) {
            free_block *next = b->next;
            free(b);
            b = next;
        }
        cache.head[c] = NULL;
        cache.count[c] = 0;
    }
}

static void make_key(void) { (void)pthread_key_create(&cache_key, release_cache); }

static void register_thread(void) {
    cache.registered = 1;
    (void)pthread_once(&cache_key_once, make_key);
    (void)pthread_setspecific(cache_key, &cache);
}

/* The smallest class that holds size bytes, or LARGE. */
static inline int class_for_request(size_t size) {
    if (size <= 256) return size == 0 ? 0 : (int)((size + 15) >> 4) - 1;
    for (int c = FINE_CLASSES; c < CLASS_COUNT; c++) {
        if (size <= class_size[c]) return c;
    }
    return LARGE;
}

/* The largest class a block of this usable size can serve, or LARGE (too big to keep). */
static inline int class_for_block(size_t usable) {
    if (usable > class_size[CLASS_COUNT - 1] + 32) return LARGE;
    if (usable < 256 + 16) return (int)(usable >> 4) - 1;
    for (int c = CLASS_COUNT - 1; c >= FINE_CLASSES; c--) {
        if (class_size[c] <= usable) return c;
    }
    return FINE_CLASSES - 1;
}

void *gh_event_malloc(size_t size) {
    int c = class_for_request(size);
    if (c == LARGE) return malloc(size);
    free_block *b = cache.head[c];
    if (b != NULL) {
        cache.head[c] = b->next;
        cache.count[c]--;
        return b;
    }
    if (!cache.registered) register_thread();
    return malloc(class_size[c]);
}

void gh_event_free(void *p) {
    if (p == NULL) return;
    int c = class_for_block(malloc_usable_size(p));
    if (c >= 0 && c != LARGE && (size_t)cache.count[c] * class_size[c] < LIST_BYTES) {
        if (!cache.registered) register_thread();
        free_block *b = p;
        b->next = cache.head[c];
        cache.head[c] = b;
        cache.count[c]++;
        return;
    }
    free(p);
}

void *gh_event_realloc(void *p, size_t size) {
    if (p == NULL) return gh_event_malloc(size);
    size_t usable = malloc_usable_size(p);
    if (size <= usable) return p;
    void *q = gh_event_malloc(size);
    if (q == NULL) return NULL;
    memcpy(q, p, usable);
    gh_event_free(p);
    return q;
}

void gh_install_event_allocator(void) {
    event_set_mem_functions(gh_event_malloc, gh_event_realloc, gh_event_free);
}

size_t gh_event_cached_blocks(void) {
    size_t n = 0;
    for (int c = 0; c < CLASS_COUNT; c++) n += cache.count[c];
    return n;
}
