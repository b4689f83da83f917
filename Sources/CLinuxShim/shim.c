#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif
#include "CLinuxShim.h"

int ap_start_writeback(int fd) {
#ifdef __linux__
    return sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#else
    (void)fd;
    return 0;
#endif
}

#ifndef __NR_cachestat
#define __NR_cachestat 451  /* the same number on every architecture */
#endif

struct ap_cachestat_range { unsigned long long off, len; };
struct ap_cachestat { unsigned long long cache, dirty, writeback, evicted, recently_evicted; };

int ap_cached_pages(int fd, long long *dirty, long long *writeback) {
#ifdef __linux__
    struct ap_cachestat_range range = {0, 0};  /* length 0: to the end of the file */
    struct ap_cachestat stat;
    if (syscall(__NR_cachestat, fd, &range, &stat, 0) != 0) return -1;
    *dirty = (long long)stat.dirty;
    *writeback = (long long)stat.writeback;
    return 0;
#else
    (void)fd; (void)dirty; (void)writeback;
    errno = ENOSYS;
    return -1;
#endif
}
