// milter_client.cpp - one MTA-side milter connection
#include "milter_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace bench {

namespace {

// The wire protocol, values as in libmilter's <libmilter/mfdef.h>.
constexpr std::uint32_t kVersion = 6;
constexpr std::uint32_t kAllActions = 0x1FF;   // SMFI_CURR_ACTS: every change an MTA can make
constexpr std::uint32_t kAllProtocol = 0x1FFFFF;  // SMFI_CURR_PROT: every step/no-reply flag
constexpr std::uint32_t NOCONNECT = 0x1, NOHELO = 0x2, NOMAIL = 0x4, NORCPT = 0x8, NOBODY = 0x10, NOHDRS = 0x20,
                        NOEOH = 0x40, NR_HDR = 0x80, NODATA = 0x200, NR_CONN = 0x1000, NR_HELO = 0x2000,
                        NR_MAIL = 0x4000, NR_RCPT = 0x8000, NR_DATA = 0x10000, NR_EOH = 0x40000, NR_BODY = 0x80000,
                        HDR_LEADSPC = 0x100000;
constexpr std::size_t kMaxPacket = 64 * 1024 * 1024;

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

void put_u32(std::string& s, std::uint32_t v) {
  unsigned char b[4] = {static_cast<unsigned char>(v >> 24), static_cast<unsigned char>(v >> 16),
                        static_cast<unsigned char>(v >> 8), static_cast<unsigned char>(v)};
  s.append(reinterpret_cast<char*>(b), 4);
}

std::uint32_t get_u32(std::string_view s, std::size_t at) {
  if (at + 4 > s.size()) throw std::runtime_error("milter reply too short");
  auto b = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + i])); };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

// cstr_at - the NUL-terminated string at AT; AT moves past its NUL.
std::string cstr_at(std::string_view s, std::size_t& at) {
  std::size_t nul = s.find('\0', at);
  if (nul == std::string_view::npos) nul = s.size();
  std::string out(s.substr(at, nul - at));
  at = nul < s.size() ? nul + 1 : s.size();
  return out;
}

}  // namespace

const char* to_text(Verdict v) {
  switch (v) {
    case Verdict::Continue: return "continue";
    case Verdict::Accept: return "accept";
    case Verdict::Reject: return "reject";
    case Verdict::TempFail: return "tempfail";
    case Verdict::Discard: return "discard";
    case Verdict::Skip: return "skip";
    case Verdict::ConnFail: return "connfail";
    case Verdict::Shutdown: return "shutdown";
  }
  return "?";
}

Endpoint parse_endpoint(const std::string& spec) {
  Endpoint ep;
  ep.spec = spec;
  if (spec.rfind("unix:", 0) == 0 || spec.rfind("local:", 0) == 0) {
    ep.unix_socket = true;
    ep.path = spec.substr(spec.find(':') + 1);
    if (ep.path.empty() || ep.path.size() >= sizeof(sockaddr_un::sun_path)) throw std::runtime_error("bad socket path in " + spec);
    return ep;
  }
  std::string rest;
  if (spec.rfind("inet:", 0) == 0) rest = spec.substr(5);
  else if (spec.rfind("inet6:", 0) == 0) rest = spec.substr(6);
  else throw std::runtime_error("socket must be inet:PORT@HOST or unix:/PATH, not " + spec);
  std::size_t at = rest.find('@');
  std::string port = rest.substr(0, at);
  ep.host = at == std::string::npos ? "127.0.0.1" : rest.substr(at + 1);
  try {
    ep.port = std::stoi(port);
  } catch (...) {
    throw std::runtime_error("bad port in " + spec);
  }
  if (ep.port <= 0 || ep.port > 65535) throw std::runtime_error("bad port in " + spec);
  return ep;
}

MilterClient::MilterClient(Endpoint ep, ClientOptions opt) : ep_(std::move(ep)), opt_(opt) {}

MilterClient::~MilterClient() {
  if (fd_ >= 0) ::close(fd_);
}

void MilterClient::open() {
  if (fd_ >= 0) close();
  out_.clear();
  in_.clear();
  in_pos_ = 0;
  if (ep_.unix_socket) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error(errno_text("socket"));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, ep_.path.c_str(), ep_.path.size() + 1);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      std::string e = errno_text(("connect " + ep_.spec).c_str());
      ::close(fd_);
      fd_ = -1;
      throw std::runtime_error(e);
    }
  } else {
    sockaddr_storage ss{};
    socklen_t len = 0;
    auto* in4 = reinterpret_cast<sockaddr_in*>(&ss);
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (inet_pton(AF_INET, ep_.host.c_str(), &in4->sin_addr) == 1) {
      in4->sin_family = AF_INET;
      in4->sin_port = htons(static_cast<std::uint16_t>(ep_.port));
      len = sizeof *in4;
    } else if (inet_pton(AF_INET6, ep_.host.c_str(), &in6->sin6_addr) == 1) {
      in6->sin6_family = AF_INET6;
      in6->sin6_port = htons(static_cast<std::uint16_t>(ep_.port));
      len = sizeof *in6;
    } else {
      throw std::runtime_error("host must be an IP address: " + ep_.spec);
    }
    fd_ = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error(errno_text("socket"));
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
      std::string e = errno_text(("connect " + ep_.spec).c_str());
      ::close(fd_);
      fd_ = -1;
      throw std::runtime_error(e);
    }
  }

  // A blocking socket with a time limit on each read and write (one system
  // call per read, as a stream would do, instead of poll plus read).
  timeval tv{opt_.timeout_ms / 1000, (opt_.timeout_ms % 1000) * 1000};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

  // Option negotiation: what Postfix (milter_protocol = 6) offers.
  std::string neg;
  put_u32(neg, kVersion);
  put_u32(neg, kAllActions);
  put_u32(neg, kAllProtocol & ~opt_.withhold_protocol);
  put('O', neg);
  auto [cmd, data] = get();
  if (cmd != 'O' || data.size() < 12) throw std::runtime_error("bad option negotiation reply from " + ep_.spec);
  version_ = get_u32(data, 0);
  actions_ = get_u32(data, 4);
  proto_ = get_u32(data, 8) & kAllProtocol;
  // Any macro lists after the three words (SMFIR_SETSYMLIST) are accepted
  // and not used: every event carries Postfix's default macros.
}

void MilterClient::close() {
  if (fd_ < 0) return;
  try {
    put('Q', {});
    flush();
  } catch (...) {
  }
  ::close(fd_);
  fd_ = -1;
}

void MilterClient::put(char cmd, std::string_view data) {
  put_u32(out_, static_cast<std::uint32_t>(data.size() + 1));
  out_ += cmd;
  out_.append(data);
  // Like a stream buffer: write out when it holds a body chunk's worth.
  if (out_.size() >= 64 * 1024) flush();
}

void MilterClient::put_macros(char for_cmd, const Macros& m) {
  if (m.empty()) return;
  std::string d(1, for_cmd);
  for (const auto& [name, value] : m) {
    d += name;
    d += '\0';
    d += value;
    d += '\0';
  }
  put('D', d);
}

void MilterClient::flush() {
  std::size_t off = 0;
  while (off < out_.size()) {
    ssize_t n = ::send(fd_, out_.data() + off, out_.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(errno_text(("write to " + ep_.spec).c_str()));
    }
    off += static_cast<std::size_t>(n);
  }
  out_.clear();
}

std::pair<char, std::string> MilterClient::get() {
  flush();
  auto fill = [&](std::size_t need) {
    while (in_.size() - in_pos_ < need) {
      if (in_pos_ > 0 && in_pos_ == in_.size()) {
        in_.clear();
        in_pos_ = 0;
      }
      char buf[16384];
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) throw std::runtime_error("timeout waiting for " + ep_.spec);
        throw std::runtime_error(errno_text(("read from " + ep_.spec).c_str()));
      }
      if (n == 0) throw std::runtime_error(ep_.spec + " closed the connection");
      if (opt_.quickack && !ep_.unix_socket) {
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
      }
      in_.append(buf, static_cast<std::size_t>(n));
    }
  };
  fill(4);
  std::uint32_t len = get_u32(in_, in_pos_);
  if (len == 0 || len > kMaxPacket) throw std::runtime_error("bad packet length from " + ep_.spec);
  fill(4 + static_cast<std::size_t>(len));
  char cmd = in_[in_pos_ + 4];
  std::string data = in_.substr(in_pos_ + 5, len - 1);
  in_pos_ += 4 + len;
  return {cmd, std::move(data)};
}

// await - read replies up to the final one of the current event. At end of
// body the modification packets before it are collected.
Reply MilterClient::await(bool end_of_body) {
  Reply r;
  for (;;) {
    auto [cmd, data] = get();
    switch (cmd) {
      case 'c': r.verdict = Verdict::Continue; return r;
      case 'a': r.verdict = Verdict::Accept; return r;
      case 'r': r.verdict = Verdict::Reject; return r;
      case 't': r.verdict = Verdict::TempFail; return r;
      case 'd': r.verdict = Verdict::Discard; return r;
      case 's': r.verdict = Verdict::Skip; return r;
      case 'f': r.verdict = Verdict::ConnFail; return r;
      case '4': r.verdict = Verdict::Shutdown; return r;
      case 'y': {
        std::size_t at = 0;
        r.text = cstr_at(data, at);
        r.verdict = !r.text.empty() && r.text[0] == '4' ? Verdict::TempFail : Verdict::Reject;
        return r;
      }
      case 'p': continue;  // progress: the milter is still working
      case 'i':            // SMFIR_INSHEADER: index, name, value
      case 'm': {          // SMFIR_CHGHEADER: index, name, value ("" deletes)
        if (!end_of_body) throw std::runtime_error(std::string("header change outside end of body from ") + ep_.spec);
        Modification m;
        m.type = cmd;
        m.index = get_u32(data, 0);
        std::size_t at = 4;
        m.name = cstr_at(data, at);
        m.value = cstr_at(data, at);
        r.mods.push_back(std::move(m));
        continue;
      }
      case 'h':    // SMFIR_ADDHEADER: name, value
      case '+':    // SMFIR_ADDRCPT
      case '-':    // SMFIR_DELRCPT
      case '2':    // SMFIR_ADDRCPT_PAR
      case 'e':    // SMFIR_CHGFROM
      case 'q':    // SMFIR_QUARANTINE: reason
      case 'b': {  // SMFIR_REPLBODY: a body chunk
        if (!end_of_body) throw std::runtime_error(std::string("message change outside end of body from ") + ep_.spec);
        Modification m;
        m.type = cmd;
        std::size_t at = 0;
        if (cmd == 'b') {
          m.value = data;
        } else {
          m.name = cstr_at(data, at);
          m.value = cstr_at(data, at);
        }
        r.mods.push_back(std::move(m));
        continue;
      }
      default:
        throw std::runtime_error(std::string("unexpected reply '") + cmd + "' from " + ep_.spec);
    }
  }
}

Reply MilterClient::event(char cmd, std::string_view data, std::uint32_t no_flag, std::uint32_t nr_flag, bool eob) {
  if (no_flag && (proto_ & no_flag)) return {};
  put(cmd, data);
  if (nr_flag && (proto_ & nr_flag)) return {};
  return await(eob);
}

Reply MilterClient::connect(const Macros& m, std::string_view host, std::string_view ip, std::uint16_t port) {
  if (proto_ & NOCONNECT) return {};
  put_macros('C', m);
  std::string d(host);
  d += '\0';
  d += ip.find(':') != std::string_view::npos ? '6' : '4';
  d += static_cast<char>(port >> 8);
  d += static_cast<char>(port & 0xff);
  d += ip;
  d += '\0';
  return event('C', d, NOCONNECT, NR_CONN);
}

Reply MilterClient::helo(const Macros& m, std::string_view name) {
  if (proto_ & NOHELO) return {};
  put_macros('H', m);
  std::string d(name);
  d += '\0';
  return event('H', d, NOHELO, NR_HELO);
}

Reply MilterClient::mail(const Macros& m, std::string_view from, const std::vector<std::string>& args) {
  if (proto_ & NOMAIL) return {};
  put_macros('M', m);
  std::string d(from);
  d += '\0';
  for (const auto& a : args) {
    d += a;
    d += '\0';
  }
  return event('M', d, NOMAIL, NR_MAIL);
}

Reply MilterClient::rcpt(const Macros& m, std::string_view to) {
  if (proto_ & NORCPT) return {};
  put_macros('R', m);
  std::string d(to);
  d += '\0';
  return event('R', d, NORCPT, NR_RCPT);
}

Reply MilterClient::data(const Macros& m) {
  if (version_ < 4 || (proto_ & NODATA)) return {};
  put_macros('T', m);
  return event('T', {}, NODATA, NR_DATA);
}

bool MilterClient::wants_headers() const { return !(proto_ & NOHDRS); }
bool MilterClient::wants_body() const { return !(proto_ & NOBODY); }

Reply MilterClient::header(std::string_view name, std::string_view value) {
  if (proto_ & NOHDRS) return {};
  // Without SMFIP_HDR_LEADSPC Postfix drops the white space after the colon.
  if (!(proto_ & HDR_LEADSPC)) {
    std::size_t i = 0;
    while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
    value.remove_prefix(i);
  }
  std::string d(name);
  d += '\0';
  d += value;
  d += '\0';
  return event('L', d, NOHDRS, NR_HDR);
}

Reply MilterClient::eoh(const Macros& m) {
  if (proto_ & NOEOH) return {};
  put_macros('N', m);
  return event('N', {}, NOEOH, NR_EOH);
}

Reply MilterClient::body(std::string_view chunk) { return event('B', chunk, NOBODY, NR_BODY); }

Reply MilterClient::end_of_body(const Macros& m) {
  put_macros('E', m);
  put('E', {});
  return await(true);
}

void MilterClient::abort() { put('A', {}); }

}  // namespace bench
