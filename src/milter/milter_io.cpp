// milter_io.cpp - accept(), read(), poll() and close() with a read buffer for
// libmilter's MTA connections (see milter_io.hpp)
#include "milter_io.hpp"

#include <dlfcn.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

namespace dmarc::milter::io {
namespace {

// Descriptors at or above this number are never buffered.
constexpr int kMaxFd = 65536;
constexpr std::size_t kBufferSize = 16384;

// One connection's buffer. libmilter hands a session to one thread at a time
// (its worker pool passes it on under a mutex), so only that thread reads
// and writes pos and data; the pool controller's poll() may look at avail
// while the session waits, hence the atomic.
struct Buffer {
  std::size_t pos = 0;
  std::atomic<std::size_t> avail{0};
  char data[kBufferSize];
};

std::atomic<Buffer*> g_buffers[kMaxFd];
std::atomic<bool> g_enabled{false};

using AcceptFn = int (*)(int, sockaddr*, socklen_t*);
using ReadFn = ssize_t (*)(int, void*, std::size_t);
using PollFn = int (*)(pollfd*, nfds_t, int);
using CloseFn = int (*)(int);

template <class Fn>
Fn next_definition(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

AcceptFn libc_accept() {
  static AcceptFn fn = next_definition<AcceptFn>("accept");
  return fn;
}
ReadFn libc_read() {
  static ReadFn fn = next_definition<ReadFn>("read");
  return fn;
}
PollFn libc_poll() {
  static PollFn fn = next_definition<PollFn>("poll");
  return fn;
}
CloseFn libc_close() {
  static CloseFn fn = next_definition<CloseFn>("close");
  return fn;
}

Buffer* buffer_of(int fd) {
  if (fd < 0 || fd >= kMaxFd) return nullptr;
  return g_buffers[fd].load(std::memory_order_acquire);
}

void drop(int fd) {
  if (fd < 0 || fd >= kMaxFd) return;
  delete g_buffers[fd].exchange(nullptr, std::memory_order_acq_rel);
}

bool has_data(const pollfd& p) {
  if (!(p.events & (POLLIN | POLLRDNORM))) return false;
  Buffer* b = buffer_of(p.fd);
  return b && b->avail.load(std::memory_order_acquire) > 0;
}

}  // namespace

bool enable() {
  const char* off = std::getenv("DMARC_MILTER_NO_READ_BUFFER");
  bool on = !(off && *off && std::strcmp(off, "0") != 0);
  g_enabled.store(on);
  return on;
}

}  // namespace dmarc::milter::io

using namespace dmarc::milter::io;

extern "C" __attribute__((visibility("default"))) int accept(int s, sockaddr* addr, socklen_t* len) {
  AcceptFn real = libc_accept();
  if (!real) {
    errno = ENOSYS;
    return -1;
  }
  int fd = real(s, addr, len);
  if (fd >= 0) {
    drop(fd);  // a descriptor closed behind our back cannot inherit data
    if (g_enabled.load(std::memory_order_relaxed) && fd < kMaxFd) {
      if (Buffer* b = new (std::nothrow) Buffer) {
        g_buffers[fd].store(b, std::memory_order_release);
      }
    }
  }
  return fd;
}

extern "C" __attribute__((visibility("default"))) ssize_t read(int fd, void* out, std::size_t n) {
  ReadFn real = libc_read();
  if (!real) {
    errno = ENOSYS;
    return -1;
  }
  Buffer* b = buffer_of(fd);
  if (!b || n == 0) return real(fd, out, n);
  std::size_t avail = b->avail.load(std::memory_order_relaxed);
  if (avail == 0) {
    // A large read (a body chunk) goes straight to the caller's memory.
    if (n >= kBufferSize) return real(fd, out, n);
    ssize_t got = real(fd, b->data, kBufferSize);
    if (got <= 0) return got;
    b->pos = 0;
    avail = static_cast<std::size_t>(got);
  }
  std::size_t k = n < avail ? n : avail;
  std::memcpy(out, b->data + b->pos, k);
  b->pos += k;
  b->avail.store(avail - k, std::memory_order_release);
  return static_cast<ssize_t>(k);
}

extern "C" __attribute__((visibility("default"))) int poll(pollfd* fds, nfds_t n, int timeout) {
  PollFn real = libc_poll();
  if (!real) {
    errno = ENOSYS;
    return -1;
  }
  if (!g_enabled.load(std::memory_order_relaxed) || fds == nullptr) return real(fds, n, timeout);
  bool buffered = false;
  for (nfds_t i = 0; i < n && !buffered; ++i) buffered = has_data(fds[i]);
  if (!buffered) return real(fds, n, timeout);
  // Data is waiting in a buffer: no wait. One descriptor (libmilter's
  // reads) needs no system call; several (the pool controller) are asked
  // about their state without waiting.
  if (n == 1) {
    fds[0].revents = static_cast<short>(fds[0].events & (POLLIN | POLLRDNORM));
    return 1;
  }
  if (real(fds, n, 0) < 0)
    for (nfds_t i = 0; i < n; ++i) fds[i].revents = 0;
  int ready = 0;
  for (nfds_t i = 0; i < n; ++i) {
    if (has_data(fds[i])) fds[i].revents = static_cast<short>(fds[i].revents | (fds[i].events & (POLLIN | POLLRDNORM)));
    if (fds[i].revents) ++ready;
  }
  return ready;
}

extern "C" __attribute__((visibility("default"))) int close(int fd) {
  CloseFn real = libc_close();
  if (!real) {
    errno = ENOSYS;
    return -1;
  }
  drop(fd);
  return real(fd);
}
