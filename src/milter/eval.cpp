// eval.cpp - offline evaluation of one message through Session
#include "eval.hpp"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "session.hpp"

namespace dmarc::milter {

namespace {
// Bare LF (and lone CR) become CRLF, as an MTA puts the message on the wire.
std::string to_crlf(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 32);
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\r') {
      out += "\r\n";
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else if (c == '\n') {
      out += "\r\n";
    } else {
      out += c;
    }
  }
  return out;
}
}  // namespace

SplitMessage split_message(const std::string& raw) {
  SplitMessage m;
  std::string text = to_crlf(raw);
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find("\r\n", pos);
    if (eol == std::string::npos) eol = text.size();
    if (eol == pos) {  // the empty line: the body follows
      pos = eol + 2;
      break;
    }
    std::string_view line(text.data() + pos, eol - pos);
    if ((line[0] == ' ' || line[0] == '\t') && !m.headers.empty()) {
      m.headers.back().second += "\r\n";
      m.headers.back().second += line;
    } else {
      std::size_t colon = line.find(':');
      if (colon == std::string_view::npos) {
        // Not a header field: treat the rest as body, as MTAs do.
        break;
      }
      m.headers.emplace_back(std::string(line.substr(0, colon)), std::string(line.substr(colon + 1)));
    }
    pos = eol + 2;
  }
  if (pos < text.size()) m.body = text.substr(pos);
  return m;
}

int run_eval(std::shared_ptr<const Engine> engine, const EvalInput& in) {
  std::string raw;
  if (in.file == "-") {
    raw.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream f(in.file, std::ios::binary);
    if (!f) {
      std::fprintf(stderr, "dmarc-milter: cannot read %s\n", in.file.c_str());
      return 66;
    }
    raw.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  SplitMessage m = split_message(raw);
  Session s(engine);
  s.connect("", in.ip);
  s.helo(in.helo);
  s.envfrom(in.mail_from, in.auth, "EVAL");
  for (const auto& r : in.rcpt) s.rcpt(r);
  for (const auto& [name, value] : m.headers) s.header(name, value);
  s.eoh();
  // Feed the body in chunks as an MTA would (libmilter: up to 64 KiB).
  constexpr std::size_t kChunk = 65535;
  for (std::size_t off = 0; off < m.body.size() && s.wants_body(); off += kChunk) s.body(std::string_view(m.body).substr(off, kChunk));
  Outcome o = s.eom("EVAL");

  std::printf("%s\n", o.log_line.c_str());
  if (!o.checked) {
    std::printf("not checked: %s\n", o.skip_reason.c_str());
  }
  for (const auto& v : o.verdicts) {
    std::printf("dmarc: %s  domain=%s policy=%s (%s) disposition=%s%s\n", std::string(to_token(v.result)).c_str(),
                v.author_domain.c_str(), std::string(to_token(v.policy_source)).c_str(),
                std::string(to_token(v.requested)).c_str(), std::string(to_token(v.disposition)).c_str(),
                v.why.empty() ? "" : ("  why: " + v.why).c_str());
  }
  const MessageDecision& d = o.decision;
  std::printf("action: %s", std::string(to_token(d.action)).c_str());
  if (!d.rcode.empty()) std::printf(" %s %s %s", d.rcode.c_str(), d.xcode.c_str(), d.text.c_str());
  if (d.hold) std::printf(" (hold)");
  std::printf("\n");
  for (const auto& del : o.deletions) std::printf("remove: %s #%d\n", del.name.c_str(), del.index);
  if (o.ar_value) {
    std::string v = *o.ar_value;
    std::printf("Authentication-Results:%s\n", v.c_str());
  }
  if (o.quarantine_header) std::printf("%s: %s\n", o.quarantine_header->first.c_str(), o.quarantine_header->second.c_str());
  switch (d.action) {
    case Action::Accept: return 0;
    case Action::Quarantine: return 1;
    case Action::Reject: return 2;
    case Action::TempFail: return 3;
  }
  return 0;
}

}  // namespace dmarc::milter
