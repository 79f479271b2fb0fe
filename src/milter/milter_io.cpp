// milter_io.cpp - accept(), read(), poll() and close() with a read buffer for
// libmilter's MTA connections (see milter_io.hpp)
#include "milter_io.hpp"

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

std::atomic<bool> g_reached{false};

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

bool enabled() noexcept { return g_enabled.load(std::memory_order_relaxed); }

bool reached() noexcept { return g_reached.load(std::memory_order_relaxed); }

}  // namespace dmarc::milter::io

using namespace dmarc::milter::io;

// The definitions libmilter's calls are bound to: the build links
// libmilter.a through "ld -r --wrap=accept,read,poll,close" (CMakeLists.txt),
// which renames libmilter's references, and only libmilter's, to these.
// Everything else in the process (SQLite, libcurl, libpq, ...) calls libc.

extern "C" int __wrap_accept(int s, sockaddr* addr, socklen_t* len) {
  g_reached.store(true, std::memory_order_relaxed);
  int fd = ::accept(s, addr, len);
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

extern "C" ssize_t __wrap_read(int fd, void* out, std::size_t n) {
  Buffer* b = buffer_of(fd);
  if (!b || n == 0) return ::read(fd, out, n);
  std::size_t avail = b->avail.load(std::memory_order_relaxed);
  if (avail == 0) {
    // A large read (a body chunk) goes straight to the caller's memory.
    if (n >= kBufferSize) return ::read(fd, out, n);
    ssize_t got = ::read(fd, b->data, kBufferSize);
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

extern "C" int __wrap_poll(pollfd* fds, nfds_t n, int timeout) {
  if (!g_enabled.load(std::memory_order_relaxed) || fds == nullptr) return ::poll(fds, n, timeout);
  bool buffered = false;
  for (nfds_t i = 0; i < n && !buffered; ++i) buffered = has_data(fds[i]);
  if (!buffered) return ::poll(fds, n, timeout);
  // Data is waiting in a buffer: no wait. One descriptor (libmilter's
  // reads) needs no system call; several (the pool controller) are asked
  // about their state without waiting.
  if (n == 1) {
    fds[0].revents = static_cast<short>(fds[0].events & (POLLIN | POLLRDNORM));
    return 1;
  }
  if (::poll(fds, n, 0) < 0)
    for (nfds_t i = 0; i < n; ++i) fds[i].revents = 0;
  int ready = 0;
  for (nfds_t i = 0; i < n; ++i) {
    if (has_data(fds[i])) fds[i].revents = static_cast<short>(fds[i].revents | (fds[i].events & (POLLIN | POLLRDNORM)));
    if (fds[i].revents) ++ready;
  }
  return ready;
}

extern "C" int __wrap_close(int fd) {
  drop(fd);
  return ::close(fd);
}
