#ifndef CLINUX_SHIM_H
#define CLINUX_SHIM_H

// Linux calls Swift's Glibc module leaves out: sync_file_range needs _GNU_SOURCE, and
// cachestat has no libc wrapper yet.

// Starts the kernel's writeback of the file's dirty pages and returns without waiting
// for it: 0, or -1 with errno. Elsewhere than Linux it does nothing and returns 0.
int ap_start_writeback(int fd);

// The file's pages in the page cache that are dirty and under writeback (cachestat,
// Linux 6.5): 0, or -1 with errno (ENOSYS on older kernels and elsewhere).
int ap_cached_pages(int fd, long long *dirty, long long *writeback);

#endif
