// fuzz_session - a whole message through the milter's Session, as libmilter
// hands it over: connect, HELO, MAIL FROM, header fields, body chunks, end
// of message (several messages per connection), over a fixed in-memory zone.
//
// Input: the first byte picks the configuration and options; the rest is
// fields split at 0x1E (RS; 0x1D (GS) makes the next byte literal, so every
// byte, NUL, CR, LF, RS and invalid UTF-8 included, reaches every field):
//   IP RS HELO RS MAILFROM RS AUTH RS (NAME:VALUE RS)* RS (CHUNK RS)* [EOM RS ...]
// A field "EOM" ends the message; MAILFROM AUTH headers and body of the next
// one follow. Option bit 0x10 repeats the longest header value to about
// 300 KB (past the pending-header and kept-header bounds), 0x20 aborts the
// first message and sends it again.
//
// The zone (world() below): reject.example, dkim.example (p=reject, real
// DKIM keys: tests/data/dkim/keys, selectors rsa2048 and ed25519),
// quarantine.example, none.example, broken.example (DMARC lookup fails).
//
// Invariants, each message:
//   - no crash, no leak, no hang;
//   - the verdict is a documented one: reply codes 550 5.7.1 / 451 4.7.1
//     exactly for reject / tempfail, the reason one of the documented tokens,
//     reply text printable ASCII, a log line without control characters;
//   - the Authentication-Results value we add has no CR, LF or NUL but our
//     own folding (";" LF TAB before each method, "spf=", "dkim=" or
//     "dmarc="), names our authserv-id when read back, and deletions name
//     only forged fields that were received, highest index first;
//   - a spoof never passes: when a From domain is at or below reject.example
//     or dkim.example (p=reject) and neither SPF nor DKIM passed for a
//     domain at or below it, a checked message is never accepted (with
//     RejectFailures no: never rejected for DMARC either, but reported as
//     report_only); an unchecked message is one of the documented
//     exemptions (no client address, SMTP AUTH, 127.0.0.1 or ::1).
#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_split.hpp"
#include "dmarc/config/config.hpp"
#include "dmarc/core/auth_results.hpp"
#include "dmarc/core/domain.hpp"
#include "dmarc/core/from_header.hpp"
#include "engine.hpp"
#include "session.hpp"
#include "support/static_resolver.hpp"

using namespace dmarc;
using dmarc::milter::Engine;
using dmarc::milter::Outcome;
using dmarc::milter::Session;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "fuzz_session: cannot read %s\n", path.c_str());
    std::abort();
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

std::shared_ptr<test::StaticResolver> world() {
  auto dns = std::make_shared<test::StaticResolver>();
  const std::string keys = std::string(DMARC_SOURCE_DIR) + "/tests/data/dkim/keys/";
  dns->add_txt("_dmarc.reject.example", "v=DMARC1; p=reject");
  dns->add_txt("reject.example", "v=spf1 ip4:192.0.2.0/24 -all");
  dns->add("reject.example", RRType::A, "192.0.2.1");
  dns->add_txt("_dmarc.dkim.example", "v=DMARC1; p=reject; adkim=s");
  dns->add_txt("dkim.example", "v=spf1 -all");
  dns->add_txt("rsa2048._domainkey.dkim.example", slurp(keys + "rsa2048.txt"));
  dns->add_txt("ed25519._domainkey.dkim.example", slurp(keys + "ed25519.txt"));
  dns->add_txt("_dmarc.quarantine.example", "v=DMARC1; p=quarantine");
  dns->add_txt("quarantine.example", "v=spf1 ip4:192.0.2.0/24 include:reject.example ~all");
  dns->add_txt("_dmarc.none.example", "v=DMARC1; p=none; rua=mailto:r@none.example");
  dns->add_txt("none.example", "v=spf1 a mx ptr exists:%{i}.%{l}.none.example ?all");
  dns->add("none.example", RRType::A, "198.51.100.1");
  dns->add("none.example", RRType::MX, "10 mx.none.example");
  dns->add_txt("helo.reject.example", "v=spf1 ip4:198.51.100.0/24 -all");
  dns->add("helo.reject.example", RRType::A, "198.51.100.1");
  dns->fail("_dmarc.broken.example");
  dns->add("broken.example", RRType::A, "192.0.2.1");
  return dns;
}

// The configurations the first byte picks from (bits 0-1).
const char* const kConfigs[] = {
    "",
    "FailureReports yes\nFailureReportContent message\n",
    "RejectFailures no\n",
    "RequiredHeaders yes\nRejectMultiValueFrom yes\nQuarantineAction both\nDNSFailureAction tempfail\n",
};

std::shared_ptr<const Engine> engine(int which) {
  static std::shared_ptr<const Engine> engines[4];
  if (!engines[which]) {
    auto cfg = parse_config(std::string("AuthservID mx.test.example\n") + kConfigs[which], "fuzz.conf");
    if (!cfg) std::abort();
    auto e = Engine::build(cfg.value(), world());
    if (!e) {
      std::fprintf(stderr, "fuzz_session: %s\n", e.error().c_str());
      std::abort();
    }
    engines[which] = e.value();
  }
  return engines[which];
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_session: property violated: %s\n", what);
    std::abort();
  }
}

std::string lower_dom(std::string d) {
  for (char& c : d)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  while (!d.empty() && d.back() == '.') d.pop_back();
  return d;
}

bool at_or_below(const std::string& domain, std::string_view base) {
  std::string d = lower_dom(domain);
  if (d == base) return true;
  return d.size() > base.size() && d.compare(d.size() - base.size(), base.size(), base) == 0 &&
         d[d.size() - base.size() - 1] == '.';
}

// ar_shape - our A-R value: " mx.test.example" then methods, each after
// ";" + our folding; no other CR, LF or NUL anywhere.
void ar_shape(const std::string& v) {
  for (std::size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    check(c != '\0', "NUL in Authentication-Results");
    if (c == '\r') check(i + 1 < v.size() && v[i + 1] == '\n', "bare CR in Authentication-Results");
    if (c != '\n') continue;
    std::size_t semi = (i > 0 && v[i - 1] == '\r') ? i - 2 : i - 1;
    check(i >= 2 && v[semi] == ';', "LF in Authentication-Results not after ';'");
    std::string_view rest = std::string_view(v).substr(i + 1);
    check(rest.substr(0, 5) == "\tspf=" || rest.substr(0, 6) == "\tdkim=" || rest.substr(0, 7) == "\tdmarc=",
          "a line of Authentication-Results that is not one of our methods");
  }
  auto id = authserv_id_of(v);
  check(id && *id == "mx.test.example", "our Authentication-Results does not read back as ours");
}

bool printable(std::string_view s, bool space_ok) {
  for (unsigned char c : s)
    if (c < 0x21 || c > 0x7e) {
      if (!(space_ok && c == ' ')) return false;
    }
  return true;
}

bool loopback(const std::string& ip) {
  unsigned char b[16];
  if (inet_pton(AF_INET, ip.c_str(), b) == 1) return b[0] == 127 && b[1] == 0 && b[2] == 0 && b[3] == 1;
  if (inet_pton(AF_INET6, ip.c_str(), b) == 1) {
    static const unsigned char one[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const unsigned char mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
    return std::memcmp(b, one, 16) == 0 || std::memcmp(b, mapped, 16) == 0;
  }
  return false;
}

struct Message {
  std::string mail_from, auth;
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<std::string> chunks;
};

void verify(int which, const std::string& ip, const std::string& auth, const Message& m, const Outcome& o) {
  const MessageDecision& d = o.decision;
  switch (d.action) {
    case Action::Reject:
      check(d.rcode == "550" && d.xcode == "5.7.1", "reject without 550 5.7.1");
      break;
    case Action::TempFail:
      check(d.rcode == "451" && d.xcode == "4.7.1", "tempfail without 451 4.7.1");
      break;
    case Action::Accept:
    case Action::Quarantine:
      break;
    default:
      check(false, "an action that is none of the four");
  }
  check(printable(d.text, true), "reply text not printable ASCII");
  // message_policy.hpp's reasons, decide()'s, and decide_bad_from()'s (the FromProblem tokens).
  static const char* const kReasons[] = {"",           "dmarc_reject",      "dmarc_quarantine",      "report_only",
                                         "dns_temperror", "no_author_domain", "trusted_forwarder",     "no_from",
                                         "bad_from",     "multi_from",        "too_many_from_domains", "required_headers"};
  bool known = false;
  for (const char* r : kReasons) known = known || d.reason == r;
  if (!known) std::fprintf(stderr, "fuzz_session: reason '%s'\n", d.reason.c_str());
  check(known, "an undocumented reason");
  for (char c : o.log_line) check(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f, "control character in log line");
  if (o.ar_value) ar_shape(*o.ar_value);
  if (o.quarantine_header) {
    check(printable(o.quarantine_header->first, false), "quarantine header name");
    check(printable(o.quarantine_header->second, true), "quarantine header value");
  }
  // Deletions: only received Authentication-Results fields, highest first.
  int ar_fields = 0;
  for (const auto& [n, v] : m.headers)
    if (ascii_iequals(n, "Authentication-Results")) ++ar_fields;
  int last = ar_fields + 1;
  for (const auto& del : o.deletions) {
    check(del.name == "Authentication-Results", "a deletion of another field");
    check(del.index >= 1 && del.index < last, "a deletion out of range or out of order");
    last = del.index;
  }

  if (!o.checked) {
    check(ip.empty() || !auth.empty() || loopback(ip), "an unchecked message that is no documented exemption");
    return;
  }
  // The spoof property. The From domains any reader could take.
  for (std::string_view base : {std::string_view("reject.example"), std::string_view("dkim.example")}) {
    bool claims = false;
    for (const auto& [n, v] : m.headers) {
      if (!ascii_iequals(n, "From")) continue;
      std::string_view body = std::string_view(v).substr(0, kMaxFromHeaderLength + 1);
      auto f = parse_from_header(body);
      std::vector<std::string> domains = f ? f->distinct_domains() : lenient_from_domains(body);
      for (const auto& dom : domains) claims = claims || at_or_below(dom, base);
    }
    if (!claims) continue;
    bool passed = false;
    if (o.spf && o.spf->result == AuthResult::Pass && at_or_below(o.spf->domain, base)) passed = true;
    for (const auto& k : o.dkim)
      if (k.result == AuthResult::Pass && at_or_below(k.domain, base)) passed = true;
    if (passed) continue;
    if (which == 2) {
      check(d.action != Action::Accept || d.reason == "report_only",
            "RejectFailures no: a spoof accepted without report_only");
      check(d.reason != "dmarc_reject" && d.reason != "dmarc_quarantine", "RejectFailures no: DMARC enforced");
      continue;
    }
    if (d.action == Action::Accept) {
      std::fprintf(stderr, "fuzz_session: accepted a spoof of %.*s: %s\n", static_cast<int>(base.size()), base.data(),
                   o.log_line.c_str());
    }
    check(d.action != Action::Accept, "a spoof of a p=reject domain was accepted");
  }
}

using dmarc::fuzz::split;

void send(Session& s, const Message& m, const char* qid) {
  s.envfrom(m.mail_from, m.auth, qid);
  s.rcpt("bob@test.example");
  for (const auto& [n, v] : m.headers) s.header(n, v);
  s.eoh();
  if (s.wants_body())
    for (const auto& c : m.chunks) s.body(c);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1 || size > 256 * 1024) return -1;
  const std::uint8_t opts = data[0];
  const int which = opts & 3;
  std::vector<std::string> f = split(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  std::size_t i = 0;
  auto next = [&]() -> std::string { return i < f.size() ? f[i++] : std::string(); };
  const std::string ip = next();
  const std::string helo = next();
  std::vector<Message> msgs;
  while (msgs.size() < 4 && (msgs.empty() || i < f.size())) {
    Message m;
    m.mail_from = next();
    m.auth = next();
    while (i < f.size() && !f[i].empty() && f[i] != "EOM") {
      const std::string& h = f[i++];
      std::size_t colon = h.find(':');
      if (colon == std::string::npos)
        m.headers.emplace_back(h, "");
      else
        m.headers.emplace_back(h.substr(0, colon), h.substr(colon + 1));
    }
    if (i < f.size() && f[i].empty()) ++i;
    while (i < f.size() && f[i] != "EOM") m.chunks.push_back(f[i++]);
    if (i < f.size()) ++i;  // "EOM"
    msgs.push_back(std::move(m));
  }
  if ((opts & 0x10) && !msgs[0].headers.empty()) {
    std::size_t longest = 0;
    for (std::size_t k = 0; k < msgs[0].headers.size(); ++k)
      if (msgs[0].headers[k].second.size() > msgs[0].headers[longest].second.size()) longest = k;
    std::string& v = msgs[0].headers[longest].second;
    if (!v.empty()) {
      std::string big;
      while (big.size() < 300 * 1024) big += v;
      v = std::move(big);
    }
  }

  Session s(engine(which));
  s.connect("client.example", ip);
  s.helo(helo);
  if (opts & 0x20) {
    send(s, msgs[0], "QIDA");
    s.abort();
  }
  for (std::size_t k = 0; k < msgs.size(); ++k) {
    send(s, msgs[k], "QID");
    Outcome o = s.eom("QID");
    if (std::getenv("FUZZ_SESSION_VERBOSE")) std::fprintf(stderr, "%s\n", o.log_line.c_str());
    verify(which, ip, msgs[k].auth, msgs[k], o);
    if (which == 1) {
      check(o.header_section.size() <= Session::kMaxKeptHeaderBytes, "kept header section over its bound");
      check(o.body_section.size() <= Session::kMaxKeptBodyBytes, "kept body over its bound");
    }
  }
  return 0;
}
