// smtp_client.cpp - a small blocking SMTP client for the end-to-end tests
#include "support/smtp_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <utility>

namespace dmarc::test {

namespace {

using Clock = std::chrono::steady_clock;

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

int ms_left(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string angle(std::string_view address) { return "<" + std::string(address) + ">"; }

}  // namespace

// --- helpers ---------------------------------------------------------------

std::string SmtpReply::str() const {
  if (code == 0) return {};
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i) out += '\n';
    out += std::to_string(code);
    out += i + 1 < lines.size() ? '-' : ' ';
    out += lines[i];
  }
  return out;
}

std::string SmtpReply::enhanced() const {
  if (lines.empty()) return {};
  const std::string& l = lines.front();
  // class "." subject "." detail: [245] "." 1*3digit "." 1*3digit
  std::size_t i = 0;
  if (l.empty() || (l[0] != '2' && l[0] != '4' && l[0] != '5')) return {};
  i = 1;
  for (int part = 0; part < 2; ++part) {
    if (i >= l.size() || l[i] != '.') return {};
    ++i;
    std::size_t digits = 0;
    while (i < l.size() && std::isdigit(static_cast<unsigned char>(l[i])) && digits < 3) {
      ++i;
      ++digits;
    }
    if (digits == 0) return {};
  }
  if (i < l.size() && l[i] != ' ') return {};
  return l.substr(0, i);
}

std::string xtext(std::string_view value) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 33 || c > 126 || c == '+' || c == '=') {
      out += '+';
      out += hex[c >> 4];
      out += hex[c & 0x0f];
    } else {
      out += ch;
    }
  }
  return out;
}

std::string base64(std::string_view data) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(data[i]) << 16) | (static_cast<unsigned char>(data[i + 1]) << 8) |
                       static_cast<unsigned char>(data[i + 2]);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  const std::size_t rest = data.size() - i;
  if (rest == 1) {
    const unsigned v = static_cast<unsigned char>(data[i]) << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    const unsigned v = (static_cast<unsigned char>(data[i]) << 16) | (static_cast<unsigned char>(data[i + 1]) << 8);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string smtp_data_bytes(std::string_view message) {
  std::string out;
  out.reserve(message.size() + message.size() / 16 + 8);
  bool line_start = true;
  for (std::size_t i = 0; i < message.size(); ++i) {
    const char c = message[i];
    if (line_start && c == '.') out += '.';
    if (c == '\n') {
      out += "\r\n";
      line_start = true;
    } else if (c == '\r' && i + 1 < message.size() && message[i + 1] == '\n') {
      out += "\r\n";
      ++i;
      line_start = true;
    } else {
      out += c;
      line_start = false;
    }
  }
  if (!line_start) out += "\r\n";
  out += ".\r\n";
  return out;
}

// --- SmtpClient ------------------------------------------------------------

SmtpClient::SmtpClient(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout,
                       const std::string& source)
    : timeout_(timeout) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof *v4;
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof *v6;
  } else {
    throw SmtpError("smtp_client: not an IP address literal: \"" + host + "\"");
  }
  const std::string where = host + " port " + std::to_string(port);
  fd_ = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) throw SmtpError(errno_text("smtp_client: socket"));
  if (!source.empty()) {
    sockaddr_storage from{};
    socklen_t from_len = 0;
    auto* f4 = reinterpret_cast<sockaddr_in*>(&from);
    auto* f6 = reinterpret_cast<sockaddr_in6*>(&from);
    if (ss.ss_family == AF_INET && ::inet_pton(AF_INET, source.c_str(), &f4->sin_addr) == 1) {
      f4->sin_family = AF_INET;
      from_len = sizeof *f4;
    } else if (ss.ss_family == AF_INET6 && ::inet_pton(AF_INET6, source.c_str(), &f6->sin6_addr) == 1) {
      f6->sin6_family = AF_INET6;
      from_len = sizeof *f6;
    } else {
      ::close(std::exchange(fd_, -1));
      throw SmtpError("smtp_client: source \"" + source + "\" is not an address of the family of " + host);
    }
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&from), from_len) != 0) {
      const std::string e = errno_text("smtp_client: bind to " + source);
      ::close(std::exchange(fd_, -1));
      throw SmtpError(e);
    }
  }
  const auto deadline = Clock::now() + timeout_;
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    if (errno != EINPROGRESS) {
      const std::string e = errno_text("smtp_client: connect to " + where);
      ::close(std::exchange(fd_, -1));
      throw SmtpError(e);
    }
    pollfd p{fd_, POLLOUT, 0};
    int soerr = 0;
    socklen_t soerr_len = sizeof soerr;
    if (::poll(&p, 1, ms_left(deadline)) != 1 ||
        ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &soerr, &soerr_len) != 0 || soerr != 0) {
      ::close(std::exchange(fd_, -1));
      throw SmtpError("smtp_client: connect to " + where + ": " +
                      (soerr ? std::strerror(soerr) : "timed out"));
    }
  }
  read_reply();  // the greeting: first transcript entry, empty command
}

SmtpClient::~SmtpClient() {
  if (fd_ >= 0) ::close(fd_);
}

void SmtpClient::fail(const std::string& what) {
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  throw SmtpError("smtp_client: " + what + "; transcript:\n" + transcript_text());
}

void SmtpClient::send_all(std::string_view bytes) {
  if (fd_ < 0) fail("not connected");
  const auto deadline = Clock::now() + timeout_;
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd_, POLLOUT, 0};
      const int left = ms_left(deadline);
      if (left == 0 || ::poll(&p, 1, left) <= 0) fail("timed out sending");
      continue;
    }
    fail(errno_text("send"));
  }
}

SmtpReply SmtpClient::read_reply() {
  if (transcript_.empty() || transcript_.back().reply.code != 0) transcript_.push_back({"", {}});
  SmtpReply reply = receive_reply();
  transcript_.back().reply = reply;
  return reply;
}

SmtpReply SmtpClient::receive_reply() {
  if (fd_ < 0) fail("not connected");
  const auto deadline = Clock::now() + timeout_;
  SmtpReply reply;
  for (;;) {
    const std::size_t eol = in_.find('\n');
    if (eol == std::string::npos) {
      if (in_.size() > 65536) fail("reply line too long");
      pollfd p{fd_, POLLIN, 0};
      const int left = ms_left(deadline);
      const int r = left == 0 ? 0 : ::poll(&p, 1, left);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) fail("timed out after " + std::to_string(timeout_.count()) + " ms waiting for a reply");
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n < 0) fail(errno_text("recv"));
      if (n == 0) fail("connection closed by the server");
      in_.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    std::string line = in_.substr(0, eol);
    in_.erase(0, eol + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const bool ok_code = line.size() >= 3 && std::isdigit(static_cast<unsigned char>(line[0])) &&
                         std::isdigit(static_cast<unsigned char>(line[1])) &&
                         std::isdigit(static_cast<unsigned char>(line[2]));
    const char sep = line.size() > 3 ? line[3] : ' ';
    if (!ok_code || (sep != ' ' && sep != '-')) fail("malformed reply line \"" + line + "\"");
    const int code = std::stoi(line.substr(0, 3));
    if (reply.code != 0 && code != reply.code) fail("reply code changed within a multi-line reply: \"" + line + "\"");
    reply.code = code;
    reply.lines.push_back(line.size() > 4 ? line.substr(4) : std::string());
    if (sep == ' ') return reply;
  }
}

SmtpReply SmtpClient::exchange(std::string_view shown, std::string_view bytes) {
  transcript_.push_back({std::string(shown), {}});
  send_all(bytes);
  SmtpReply reply = receive_reply();
  transcript_.back().reply = reply;
  return reply;
}

SmtpReply SmtpClient::command(std::string_view line) {
  std::string bytes(line);
  bytes += "\r\n";
  return exchange(line, bytes);
}

void SmtpClient::send_raw(std::string_view bytes) {
  transcript_.push_back({"<raw, " + std::to_string(bytes.size()) + " bytes>", {}});
  send_all(bytes);
}

SmtpReply SmtpClient::ehlo(std::string_view name) {
  SmtpReply r = command("EHLO " + std::string(name));
  ehlo_keywords_.clear();
  if (r.code == 250) {
    for (std::size_t i = 1; i < r.lines.size(); ++i) ehlo_keywords_.push_back(upper(r.lines[i]));
  }
  return r;
}

SmtpReply SmtpClient::helo(std::string_view name) {
  ehlo_keywords_.clear();
  return command("HELO " + std::string(name));
}

bool SmtpClient::has_extension(std::string_view keyword) const {
  const std::string k = upper(std::string(keyword));
  for (const auto& line : ehlo_keywords_) {
    if (line == k || line.rfind(k + " ", 0) == 0) return true;
  }
  return false;
}

SmtpReply SmtpClient::xclient(const XclientAttributes& a) {
  std::string line = "XCLIENT";
  auto add = [&line](const char* name, const std::optional<std::string>& v) {
    if (v) line += std::string(" ") + name + "=" + xtext(*v);
  };
  add("NAME", a.name);
  add("ADDR", a.addr);
  add("PORT", a.port);
  add("PROTO", a.proto);
  add("HELO", a.helo);
  add("LOGIN", a.login);
  ehlo_keywords_.clear();
  return command(line);
}

SmtpReply SmtpClient::auth_plain(std::string_view user, std::string_view password, std::string_view authzid) {
  std::string token(authzid);
  token += '\0';
  token += user;
  token += '\0';
  token += password;
  const std::string bytes = "AUTH PLAIN " + base64(token) + "\r\n";
  return exchange("AUTH PLAIN <credentials of " + std::string(user) + ">", bytes);
}

SmtpReply SmtpClient::mail_from(std::string_view address, std::string_view params) {
  std::string line = "MAIL FROM:" + angle(address);
  if (!params.empty()) line += " " + std::string(params);
  return command(line);
}

SmtpReply SmtpClient::rcpt_to(std::string_view address) { return command("RCPT TO:" + angle(address)); }

SmtpReply SmtpClient::data(std::string_view message) {
  SmtpReply r = command("DATA");
  if (r.code != 354) return r;
  return this->message(message);
}

SmtpReply SmtpClient::message(std::string_view message) {
  const std::string bytes = smtp_data_bytes(message);
  return exchange("<message, " + std::to_string(bytes.size()) + " bytes>", bytes);
}

SmtpReply SmtpClient::quit() {
  SmtpReply r = command("QUIT");
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  return r;
}

std::string transcript_text(const std::vector<SmtpExchange>& transcript) {
  std::string out;
  for (const auto& x : transcript) {
    if (!x.command.empty()) out += "C: " + x.command + "\n";
    if (x.reply.code != 0) {
      std::string s = x.reply.str();
      std::size_t start = 0;
      for (;;) {
        const std::size_t nl = s.find('\n', start);
        out += "S: " + s.substr(start, nl == std::string::npos ? std::string::npos : nl - start) + "\n";
        if (nl == std::string::npos) break;
        start = nl + 1;
      }
    }
  }
  return out;
}

std::string SmtpClient::transcript_text() const { return dmarc::test::transcript_text(transcript_); }

// --- send_mail ---------------------------------------------------------------

std::string SmtpOutcome::queue_id() const {
  if (!accepted() || final_reply.lines.empty()) return {};
  const std::string& l = final_reply.lines.front();
  const std::string marker = "queued as ";
  const std::size_t at = l.find(marker);
  if (at == std::string::npos) return {};
  std::size_t end = at + marker.size();
  while (end < l.size() && std::isalnum(static_cast<unsigned char>(l[end]))) ++end;
  return l.substr(at + marker.size(), end - at - marker.size());
}

std::string SmtpOutcome::transcript_text() const { return dmarc::test::transcript_text(transcript); }

SmtpOutcome send_mail(std::uint16_t port, const SmtpMessage& m, std::chrono::milliseconds timeout) {
  SmtpClient c(m.host, port, timeout, m.source);
  SmtpOutcome out;
  auto finish = [&](const SmtpReply& r, const char* stage) {
    out.final_reply = r;
    out.stage = stage;
    if (c.connected() && r.code != 421) {
      try {
        c.quit();
      } catch (const SmtpError&) {
        // The outcome is decided; a server that hangs up instead of
        // answering QUIT does not change it (the transcript shows it).
      }
    }
    out.transcript = c.transcript();
    return out;
  };
  if (c.greeting().code != 220) return finish(c.greeting(), "greeting");
  SmtpReply r = c.ehlo(m.helo);
  if (r.code != 250) return finish(r, "ehlo");
  if (m.xclient) {
    r = c.xclient(*m.xclient);
    if (r.code != 220) return finish(r, "xclient");
    r = c.ehlo(m.xclient->helo ? *m.xclient->helo : m.helo);
    if (r.code != 250) return finish(r, "ehlo");
  }
  if (m.auth) {
    r = c.auth_plain(m.auth->user, m.auth->password);
    if (r.code != 235) return finish(r, "auth");
  }
  r = c.mail_from(m.mail_from, m.mail_params);
  if (r.code / 100 != 2) return finish(r, "mail");
  bool any_rcpt = false;
  for (const auto& rcpt : m.rcpt_to) {
    SmtpReply rr = c.rcpt_to(rcpt);
    if (rr.code / 100 == 2) any_rcpt = true;
    out.rcpt_replies.push_back(rr);
    r = rr;
  }
  if (!any_rcpt) {
    // The first refusal says why (later ones may just repeat it).
    for (const auto& rr : out.rcpt_replies) {
      if (rr.code / 100 != 2) return finish(rr, "rcpt");
    }
    return finish(r, "rcpt");
  }
  r = c.command("DATA");
  if (r.code != 354) return finish(r, "data");
  return finish(c.message(m.data), "message");
}

}  // namespace dmarc::test
