/*
 * wall-clock-offset: an LD_PRELOAD shim that shifts a process's wall clock (CLOCK_REALTIME and
 * its variants, gettimeofday, time) by an offset that can be changed while the process runs, and
 * leaves every other clock (CLOCK_MONOTONIC, CLOCK_BOOTTIME, ...) alone. Used by
 * scripts/disk-faults.sh to jump a kvd node's wall clock by hours (build: gcc -shared -fPIC -O2
 * -o wall-clock-offset.so wall-clock-offset.c -ldl).
 *
 *   WALL_CLOCK_OFFSET_FILE=PATH  PATH holds the offset in whole seconds, e.g. 10800 or -10800;
 *                                it is read again on every call (a missing or unreadable file
 *                                means 0).
 *
 * It exists because Debian's libfaketime 0.9.10, preloaded into a Swift executable, makes the
 * program lose its command-line arguments (kvd then stops with "Missing expected argument").
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long offset_seconds(void) {
    const char *path = getenv("WALL_CLOCK_OFFSET_FILE");
    if (path == NULL || *path == '\0') return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char text[32];
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0) return 0;
    text[n] = '\0';
    return strtoll(text, NULL, 10);
}

static int is_wall_clock(clockid_t id) {
    return id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE
#ifdef CLOCK_REALTIME_ALARM
           || id == CLOCK_REALTIME_ALARM
#endif
#ifdef CLOCK_TAI
           || id == CLOCK_TAI
#endif
        ;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    static int (*next)(clockid_t, struct timespec *);
    if (next == NULL) next = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int result = next(id, ts);
    if (result == 0 && is_wall_clock(id)) ts->tv_sec += (time_t)offset_seconds();
    return result;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    static int (*next)(struct timeval *restrict, void *restrict);
    if (next == NULL) next = (int (*)(struct timeval *restrict, void *restrict))dlsym(RTLD_NEXT, "gettimeofday");
    int result = next(tv, tz);
    if (result == 0) tv->tv_sec += (time_t)offset_seconds();
    return result;
}

time_t time(time_t *out) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (out != NULL) *out = ts.tv_sec;
    return ts.tv_sec;
}
