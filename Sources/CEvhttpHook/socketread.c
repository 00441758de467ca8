/*
 * Why this file exists: libevent 2.1's evbuffer_read — what every socket bufferevent calls when
 * its socket is readable (a client connection under evhttp, a WebSocket tunnel side) — first
 * asks the kernel how many bytes are waiting, with ioctl(FIONREAD), and then reads that many
 * (at most 4096) with readv. The ioctl is a system call per read, about one in seven of those a
 * proxied request makes (deploy/bench/README.md), and its answer only sizes the buffer: readv
 * itself returns how many bytes there were.
 *
 * evbuffer_read is exported by libevent and called through its PLT (see hook.c), so the
 * definition here interposes it. It is written with libevent's public evbuffer API
 * (evbuffer_reserve_space, recv or recvmsg, evbuffer_commit_space) and keeps evbuffer_read's
 * contract:
 *
 * - at most `howmuch` bytes are read when howmuch >= 0, else at most GH_READ_MAX; libevent's
 *   own limit is 4096, GH_READ_MAX is 4096 less room for libevent's chain header, so that a read
 *   into an empty buffer takes one 4 KiB block (allocator.c's largest size class);
 * - it returns the bytes read, 0 at end of stream, -1 with errno from the read on an error
 *   (EAGAIN included), and -1 for a frozen buffer or when no memory could be reserved;
 * - the buffer's callbacks run once for the bytes added (evbuffer_commit_space runs them).
 *
 * `GATEHOUSE_EVBUFFER_READ=libevent` in the environment sends every call to libevent's own
 * function instead (found with dlsym(RTLD_NEXT)): to compare the two in one sitting, or to rule
 * this out.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <event2/buffer.h>
#include "CEvhttpHook.h"

enum { GH_READ_MAX = 4096 - 64 };

typedef int (*evbuffer_read_fn)(struct evbuffer *, evutil_socket_t, int);

/* 0: not decided yet, 1: this file's read, 2: libevent's. Decided once, on the first call. */
static int read_mode = 0;
static evbuffer_read_fn libevent_read = NULL;

static int choose_read_mode(void) {
    const char *choice = getenv("GATEHOUSE_EVBUFFER_READ");
    int mode = 1;
    if (choice != NULL && strcmp(choice, "libevent") == 0) {
        evbuffer_read_fn original = (evbuffer_read_fn)dlsym(RTLD_NEXT, "evbuffer_read");
        if (original != NULL) {
            __atomic_store_n(&libevent_read, original, __ATOMIC_RELEASE);
            mode = 2;
        }
    }
    __atomic_store_n(&read_mode, mode, __ATOMIC_RELEASE);
    return mode;
}

/* recv(2), or recvmsg(2) for two pieces: the socket calls skip the file layer's checks that
   read(2) and readv(2) make on every call (fdget_pos, rw_verify_area, fsnotify; ~0.1 µs a call
   in perf's kernel profile). A descriptor that is not a socket (ENOTSOCK) is read with readv. */
static ssize_t receive(evutil_socket_t fd, struct iovec *vec, int count) {
    ssize_t n;
    if (count == 1) {
        n = recv(fd, vec[0].iov_base, vec[0].iov_len, 0);
    } else {
        struct msghdr message;
        memset(&message, 0, sizeof message);
        message.msg_iov = vec;
        message.msg_iovlen = (size_t)count;
        n = recvmsg(fd, &message, 0);
    }
    if (n < 0 && errno == ENOTSOCK) n = readv(fd, vec, count);
    return n;
}

int gh_evbuffer_read_direct(struct evbuffer *buf, evutil_socket_t fd, int howmuch) {
    if (howmuch < 0 || howmuch > GH_READ_MAX) howmuch = GH_READ_MAX;
    /* libevent's readv with no room returns 0, which its callers take as end of stream. */
    if (howmuch == 0) return 0;
    struct evbuffer_iovec space[2];
    int count = evbuffer_reserve_space(buf, howmuch, space, 2);
    if (count < 1) return -1;
    /* The reserved chains may hold more than howmuch: read no more than asked. */
    struct iovec vec[2];
    size_t left = (size_t)howmuch;
    int used = 0;
    for (int i = 0; i < count && left > 0; i++) {
        size_t len = space[i].iov_len < left ? space[i].iov_len : left;
        vec[i].iov_base = space[i].iov_base;
        vec[i].iov_len = len;
        left -= len;
        used = i + 1;
    }
    ssize_t n = receive(fd, vec, used);
    /* Nothing committed: the reservation is simply not used (errno stays the read's). */
    if (n <= 0) return (int)n;
    size_t rest = (size_t)n;
    int filled = 0;
    for (int i = 0; i < used && rest > 0; i++) {
        space[i].iov_len = vec[i].iov_len < rest ? vec[i].iov_len : rest;
        rest -= space[i].iov_len;
        filled = i + 1;
    }
    if (evbuffer_commit_space(buf, space, filled) != 0) return -1;
    return (int)n;
}

int evbuffer_read(struct evbuffer *buf, evutil_socket_t fd, int howmuch) {
    int mode = __atomic_load_n(&read_mode, __ATOMIC_ACQUIRE);
    if (mode == 0) mode = choose_read_mode();
    if (mode == 2) return __atomic_load_n(&libevent_read, __ATOMIC_ACQUIRE)(buf, fd, howmuch);
    return gh_evbuffer_read_direct(buf, fd, howmuch);
}
