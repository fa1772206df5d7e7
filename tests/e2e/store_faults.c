/*
 * A fault-injecting layer under the gate's SQLite store, loaded with
 * LD_PRELOAD into the real `recourse serve` by tests/e2e/store_faults.rs.
 *
 * SQLite's own test method (its test VFS): fail I/O operation k of a kind,
 * once or from then on, and see the system come through. The bundled SQLite
 * calls the C library's fsync, fdatasync, write, pwrite and pwrite64; these
 * wrappers fail the k-th call on a file whose path contains
 * RECOURSE_FAULT_FILE (the store: `recourse.db`, its `-wal`), and pass every
 * other call through. Nothing is counted until the file RECOURSE_FAULT_ARMED
 * exists, so the gate's start is left alone and the fault falls in the
 * requests the test sends.
 *
 *   RECOURSE_FAULT_FILE     substring of the path to fault (`recourse.db`)
 *   RECOURSE_FAULT_OPS      `fsync` (fsync, fdatasync) or `write` (write,
 *                           pwrite, pwrite64)
 *   RECOURSE_FAULT_AT       k: the first call to fail (1-based)
 *   RECOURSE_FAULT_FOREVER  set: every call from k on fails, else only k
 *   RECOURSE_FAULT_ERRNO    `EIO` (default) or `ENOSPC`
 *   RECOURSE_FAULT_ARMED    path of the file that turns counting on
 *
 * Each failed call is reported on stderr as
 * `recourse-fault: failing <op> #<n> of <path>`, which the test reads to
 * know the fault was reached.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static atomic_long counted;

static int armed(void) {
    const char *flag = getenv("RECOURSE_FAULT_ARMED");
    return flag != NULL && access(flag, F_OK) == 0;
}

/* Whether this call of `kind` on `fd` is one to fail; sets errno if so. */
static int fail_now(const char *kind, const char *op, int fd) {
    const char *ops = getenv("RECOURSE_FAULT_OPS");
    const char *file = getenv("RECOURSE_FAULT_FILE");
    if (ops == NULL || file == NULL || strcmp(ops, kind) != 0) {
        return 0;
    }
    char link[64];
    char path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, path, sizeof path - 1);
    if (len <= 0) {
        return 0;
    }
    path[len] = '\0';
    if (strstr(path, file) == NULL || !armed()) {
        return 0;
    }
    long at = atol(getenv("RECOURSE_FAULT_AT") ? getenv("RECOURSE_FAULT_AT") : "0");
    long n = atomic_fetch_add(&counted, 1) + 1;
    int forever = getenv("RECOURSE_FAULT_FOREVER") != NULL;
    if (at <= 0 || !(n == at || (forever && n > at))) {
        return 0;
    }
    const char *name = getenv("RECOURSE_FAULT_ERRNO");
    int err = (name != NULL && strcmp(name, "ENOSPC") == 0) ? ENOSPC : EIO;
    dprintf(2, "recourse-fault: failing %s #%ld of %s with %s\n", op, n, path,
            err == ENOSPC ? "ENOSPC" : "EIO");
    errno = err;
    return 1;
}

typedef int (*sync_fn)(int);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*pwrite64_fn)(int, const void *, size_t, off64_t);

#define REAL(name, type) \
    static type real_##name; \
    if (real_##name == NULL) real_##name = (type)dlsym(RTLD_NEXT, #name)

int fsync(int fd) {
    REAL(fsync, sync_fn);
    if (fail_now("fsync", "fsync", fd)) return -1;
    return real_fsync(fd);
}

int fdatasync(int fd) {
    REAL(fdatasync, sync_fn);
    if (fail_now("fsync", "fdatasync", fd)) return -1;
    return real_fdatasync(fd);
}

ssize_t write(int fd, const void *buf, size_t count) {
    REAL(write, write_fn);
    if (fail_now("write", "write", fd)) return -1;
    return real_write(fd, buf, count);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    REAL(pwrite, pwrite_fn);
    if (fail_now("write", "pwrite", fd)) return -1;
    return real_pwrite(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t offset) {
    REAL(pwrite64, pwrite64_fn);
    if (fail_now("write", "pwrite64", fd)) return -1;
    return real_pwrite64(fd, buf, count, offset);
}
