// NAME
//   gzip.cpp - gzip and gunzip through zlib, for the report attachment
// STANDARDS
//   RFC 1952 (gzip file format; 2.2: a file is a series of members),
//   RFC 1951 (deflate), RFC 9990 3 / RFC 7489 7.2.1.1 (reports SHOULD be
//   gzip compressed, application/gzip).
// DESCRIPTION
//   gzip() writes one gzip member (deflateInit2 with windowBits 15 + 16,
//   best compression). gunzip() accepts gzip only (windowBits 15 + 16, not
//   zlib or raw deflate), reads every member of a multi-member file, and
//   refuses: empty input, a damaged or truncated stream (zlib checks the
//   CRC-32 and ISIZE of every member), octets after the last member that
//   are not another member, and output over MAX_OUT octets. Output grows
//   in bounded steps and is never allowed past MAX_OUT, so a gzip bomb
//   costs at most MAX_OUT octets of memory.
#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <string>
#include <string_view>

#include "dmarc/report/aggregate_xml.hpp"

namespace dmarc {

namespace {

constexpr std::size_t kChunk = 64 * 1024;

// ZStream - a z_stream ended with deflateEnd or inflateEnd.
class ZStream {
 public:
  explicit ZStream(bool inflating) : inflating_(inflating) { std::memset(&z_, 0, sizeof z_); }
  ZStream(const ZStream&) = delete;
  ZStream& operator=(const ZStream&) = delete;
  ~ZStream() {
    if (!started_) return;
    if (inflating_)
      inflateEnd(&z_);
    else
      deflateEnd(&z_);
  }
  z_stream* get() { return &z_; }
  void started() { started_ = true; }

 private:
  z_stream z_;
  bool inflating_;
  bool started_ = false;
};

std::string zmessage(const char* what, int rc, const z_stream* z) {
  std::string m = std::string(what) + ": ";
  m += (z && z->msg) ? z->msg : zError(rc);
  return m;
}

// feed - give zlib at most UINT_MAX octets of IN at a time.
void feed(z_stream* z, std::string_view& in) {
  if (z->avail_in != 0 || in.empty()) return;
  const std::size_t n = std::min<std::size_t>(in.size(), UINT_MAX);
  z->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z->avail_in = static_cast<uInt>(n);
  in.remove_prefix(n);
}

}  // namespace

Expected<std::string, std::string> gzip(std::string_view data) {
  ZStream zs(false);
  z_stream* z = zs.get();
  int rc = deflateInit2(z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  if (rc != Z_OK) return Unexpected(zmessage("gzip", rc, nullptr));
  zs.started();
  std::string out;
  out.reserve(data.size() / 4 + 64);
  std::string_view in = data;
  for (;;) {
    feed(z, in);
    const int flush = (in.empty()) ? Z_FINISH : Z_NO_FLUSH;
    const std::size_t had = out.size();
    out.resize(had + kChunk);
    z->next_out = reinterpret_cast<Bytef*>(out.data() + had);
    z->avail_out = static_cast<uInt>(kChunk);
    rc = deflate(z, flush);
    out.resize(had + (kChunk - z->avail_out));
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK && rc != Z_BUF_ERROR) return Unexpected(zmessage("gzip", rc, z));
  }
  return out;
}

Expected<std::string, std::string> gunzip(std::string_view data, std::size_t max_out) {
  if (data.empty()) return Unexpected(std::string("gunzip: empty input"));
  ZStream zs(true);
  z_stream* z = zs.get();
  int rc = inflateInit2(z, 15 + 16);  // gzip only (RFC 1952)
  if (rc != Z_OK) return Unexpected(zmessage("gunzip", rc, nullptr));
  zs.started();
  std::string out;
  std::string_view in = data;
  for (;;) {
    feed(z, in);
    if (out.size() >= max_out) {
      // Full: one more octet of output would be too many; ask for one
      // octet to learn whether the stream has more to give.
      unsigned char probe;
      z->next_out = &probe;
      z->avail_out = 1;
      rc = inflate(z, Z_NO_FLUSH);
      if (z->avail_out == 0)
        return Unexpected("gunzip: the output is over " + std::to_string(max_out) + " octets");
    } else {
      const std::size_t room = std::min(kChunk, max_out - out.size());
      const std::size_t had = out.size();
      out.resize(had + room);
      z->next_out = reinterpret_cast<Bytef*>(out.data() + had);
      z->avail_out = static_cast<uInt>(room);
      rc = inflate(z, Z_NO_FLUSH);
      out.resize(had + (room - z->avail_out));
    }
    if (rc == Z_STREAM_END) {
      // RFC 1952 2.2: another member may follow.
      if (z->avail_in == 0 && in.empty()) break;
      const auto* next = z->avail_in ? reinterpret_cast<const unsigned char*>(z->next_in)
                                     : reinterpret_cast<const unsigned char*>(in.data());
      if (next[0] != 0x1f) return Unexpected(std::string("gunzip: data after the end of the gzip stream"));
      rc = inflateReset(z);
      if (rc != Z_OK) return Unexpected(zmessage("gunzip", rc, z));
      continue;
    }
    if (rc == Z_BUF_ERROR) {
      // No progress possible: no input left (truncated) or no room (above).
      if (z->avail_in == 0 && in.empty()) return Unexpected(std::string("gunzip: the gzip stream is truncated"));
      continue;
    }
    if (rc != Z_OK) return Unexpected(zmessage("gunzip", rc, z));
    if (z->avail_in == 0 && in.empty() && z->avail_out != 0)
      return Unexpected(std::string("gunzip: the gzip stream is truncated"));
  }
  return out;
}

}  // namespace dmarc
