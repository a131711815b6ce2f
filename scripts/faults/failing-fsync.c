/*
 * failing-fsync: an LD_PRELOAD shim that makes a process's fsync, fdatasync, sync_file_range
 * and syncfs fail with EIO once a trigger fires, the way a disk that lost a write reports it
 * (used by scripts/disk-faults.sh; build: gcc -shared -fPIC -O2 -o failing-fsync.so
 * failing-fsync.c -ldl).
 *
 * Triggers (either or both; with neither set the shim never fails):
 *   FAILING_FSYNC_TRIGGER=PATH  fail every call made after PATH exists;
 *   FAILING_FSYNC_AFTER=N       fail every call after the first N calls.
 * And optionally which files:
 *   FAILING_FSYNC_FILES=TEXT    fail only calls on files whose path contains TEXT (say
 *                               "state.sqlite": a bad spot on the disk under one file); calls on
 *                               other files go through.
 * Once failing it keeps failing (a real device error does not heal), and it does not pass the
 * call on: the data stays unsynced. The first failure, and every 1000th after it, is reported on
 * stderr as "failing-fsync: <call>(fd N: <path>) -> EIO (failure #K)", and at a normal exit the
 * total: "failing-fsync: K calls failed" (a process that went on syncing after its first EIO
 * shows a large K).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_long calls;
static atomic_long failures;
static atomic_int failing;

static int on_chosen_file(int fd) {
    const char *files = getenv("FAILING_FSYNC_FILES");
    if (files == NULL || *files == '\0') return 1;
    char link[64], path[512];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, path, sizeof path - 1);
    if (len <= 0) return 0;
    path[len] = '\0';
    return strstr(path, files) != NULL;
}

static int triggered(void) {
    if (atomic_load(&failing)) return 1;
    long n = atomic_fetch_add(&calls, 1) + 1;
    const char *after = getenv("FAILING_FSYNC_AFTER");
    if (after != NULL && *after != '\0' && n > atol(after)) {
        atomic_store(&failing, 1);
        return 1;
    }
    const char *trigger = getenv("FAILING_FSYNC_TRIGGER");
    if (trigger != NULL && *trigger != '\0' && access(trigger, F_OK) == 0) {
        atomic_store(&failing, 1);
        return 1;
    }
    return 0;
}

static int should_fail(int fd) { return triggered() && on_chosen_file(fd); }

static int fail(const char *call, int fd) {
    long k = atomic_fetch_add(&failures, 1) + 1;
    if (k == 1 || k % 1000 == 0) {
        char link[64], path[512];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t len = fd >= 0 ? readlink(link, path, sizeof path - 1) : -1;
        path[len > 0 ? len : 0] = '\0';
        char line[768];
        int n = snprintf(line, sizeof line, "failing-fsync: %s(fd %d: %s) -> EIO (failure #%ld)\n", call, fd,
                         len > 0 ? path : "?", k);
        if (n > 0) {
            ssize_t ignored = write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
            (void)ignored;
        }
    }
    errno = EIO;
    return -1;
}

#define NEXT(type, name) ((type)dlsym(RTLD_NEXT, name))

int fsync(int fd) {
    if (should_fail(fd)) return fail("fsync", fd);
    return NEXT(int (*)(int), "fsync")(fd);
}

int fdatasync(int fd) {
    if (should_fail(fd)) return fail("fdatasync", fd);
    return NEXT(int (*)(int), "fdatasync")(fd);
}

int syncfs(int fd) {
    if (should_fail(fd)) return fail("syncfs", fd);
    return NEXT(int (*)(int), "syncfs")(fd);
}

int sync_file_range(int fd, off_t offset, off_t nbytes, unsigned int flags) {
    if (should_fail(fd)) return fail("sync_file_range", fd);
    return NEXT(int (*)(int, off_t, off_t, unsigned int), "sync_file_range")(fd, offset, nbytes, flags);
}

__attribute__((destructor)) static void report(void) {
    long k = atomic_load(&failures);
    if (k == 0) return;
    char line[96];
    int n = snprintf(line, sizeof line, "failing-fsync: %ld calls failed\n", k);
    if (n > 0) {
        ssize_t ignored = write(2, line, (size_t)n);
        (void)ignored;
    }
}
