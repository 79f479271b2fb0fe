// dkim_test_util.hpp - helpers shared by the DKIM suites (tests/dkim)
//
//   split_message()   raw RFC 5322 text -> header fields (name, value as the
//                     MTA hands them: folded lines kept, LF or CRLF) + body
//   to_crlf()         bare LF -> CRLF (stalwart vectors, SMTP form)
//   verify()          feed a message to a DkimVerifier, body in chunks
//   load_dns_lines()  "<name> <TXT value>" lines into a StaticResolver
//   sign()            signs test messages with libopendkim (dkim_sign) and
//                     an RSA key from tests/data/dkim/keys. Not ed25519:
//                     libopendkim 2.11 leaks the key it loads to sign with
//                     ed25519 (dkim_privkey_load; dkim_free releases only
//                     RSA keys), which the ASan build would report; the
//                     ed25519 messages are signed by dkimpy instead
//                     (data_message("dkimpy-ed25519.eml")).
//   data_message()    a message file of tests/data/dkim
#pragma once

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "adapters/dkim/dkim_handles.hpp"
#include "dmarc/adapters/dkim.hpp"
#include "support/static_resolver.hpp"

namespace dmarc::test {

struct SplitMessage {
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string to_crlf(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 20);
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) out += '\r';
    out += text[i];
  }
  return out;
}

// split_message - header fields and body of TEXT (line ends LF or CRLF).
// A value runs from after the colon to the end of the field, without the
// final line end; folded lines keep their own line ends, as libmilter
// passes them on.
inline SplitMessage split_message(std::string_view text) {
  SplitMessage m;
  std::size_t pos = 0;
  auto line_end = [&](std::size_t from, std::size_t& next) {
    std::size_t lf = text.find('\n', from);
    if (lf == std::string_view::npos) {
      next = text.size();
      return text.size();
    }
    next = lf + 1;
    return (lf > from && text[lf - 1] == '\r') ? lf - 1 : lf;
  };
  while (pos < text.size()) {
    std::size_t next = 0;
    std::size_t end = line_end(pos, next);
    if (end == pos) {  // empty line: the body follows
      m.body = std::string(text.substr(next));
      return m;
    }
    // Extend over continuation lines.
    std::size_t field_end = end, after = next;
    while (after < text.size() && (text[after] == ' ' || text[after] == '\t')) {
      std::size_t n2 = 0;
      field_end = line_end(after, n2);
      after = n2;
    }
    std::string_view field = text.substr(pos, field_end - pos);
    std::size_t colon = field.find(':');
    if (colon != std::string_view::npos)
      m.headers.emplace_back(std::string(field.substr(0, colon)), std::string(field.substr(colon + 1)));
    pos = after;
  }
  return m;
}

// verify - run MSG through V; the body in chunks of CHUNK octets (0: one).
inline std::vector<DkimSignatureResult> verify(DkimVerifier& v, const SplitMessage& msg, std::size_t chunk = 0,
                                               std::string_view job = "TEST") {
  auto m = v.begin(job);
  for (const auto& [name, value] : msg.headers) m->header(name, value);
  m->end_of_headers();
  if (chunk == 0) chunk = msg.body.size() + 1;
  for (std::size_t off = 0; off < msg.body.size(); off += chunk)
    m->body(std::string_view(msg.body).substr(off, chunk));
  return m->finish();
}

// load_dns_lines - "<name> <value>" lines (value to the end of the line);
// "#" and ";" lines are comments. Returns the names seen.
inline std::vector<std::string> load_dns_lines(StaticResolver& r, std::string_view text) {
  std::vector<std::string> names;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    std::size_t sp = line.find_first_of(" \t");
    if (sp == std::string::npos) continue;
    std::string name = line.substr(0, sp);
    std::size_t v = line.find_first_not_of(" \t", sp);
    std::string value = v == std::string::npos ? std::string() : line.substr(v);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
    r.add_txt(name, value);
    names.push_back(name);
  }
  return names;
}

inline std::unique_ptr<DkimVerifier> make_verifier(Resolver& r, DkimOptions o = {}) {
  auto v = DkimVerifier::create(r, std::move(o));
  if (!v) throw std::runtime_error(v.error());
  return std::move(*v);
}

inline std::string key_path(const std::string& name) { return std::string(DMARC_TEST_DATA_DIR) + "/dkim/keys/" + name; }

// sign - dkim_sign() over a SplitMessage; returns the DKIM-Signature
// field value (without "DKIM-Signature:").
struct SignSpec {
  std::string key_file;  // under tests/data/dkim/keys
  std::string selector = "sel";
  std::string domain = "dkim.example";
  dkim_alg_t alg = DKIM_SIGN_RSASHA256;
  dkim_canon_t hcanon = DKIM_CANON_RELAXED;
  dkim_canon_t bcanon = DKIM_CANON_RELAXED;
  ssize_t length = -1;  // l=: -1 none, else the count to sign
  std::uint64_t time = 1700000000;
};

inline std::string sign(const SplitMessage& msg, const SignSpec& spec) {
  REQUIRE(spec.alg != DKIM_SIGN_ED25519SHA256);  // see the header comment
  dkim::DkimLib lib(dkim_init(nullptr, nullptr));
  REQUIRE(lib);
  std::uint64_t t = spec.time;
  REQUIRE(dkim_options(lib.get(), DKIM_OP_SETOPT, DKIM_OPTS_FIXEDTIME, &t, sizeof t) == DKIM_STAT_OK);
  if (spec.length >= 0) {
    unsigned int flags = DKIM_LIBFLAGS_SIGNLEN;
    REQUIRE(dkim_options(lib.get(), DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof flags) == DKIM_STAT_OK);
  }
  unsigned int minbits = 0;  // test keys include small ones, on purpose
  REQUIRE(dkim_options(lib.get(), DKIM_OP_SETOPT, DKIM_OPTS_MINKEYBITS, &minbits, sizeof minbits) == DKIM_STAT_OK);
  std::string key = read_file(key_path(spec.key_file));
  DKIM_STAT st = DKIM_STAT_OK;
  dkim::DkimHandle d(dkim_sign(lib.get(), reinterpret_cast<const unsigned char*>("SIGN"), nullptr,
                               reinterpret_cast<dkim_sigkey_t>(key.data()),
                               reinterpret_cast<const unsigned char*>(spec.selector.c_str()),
                               reinterpret_cast<const unsigned char*>(spec.domain.c_str()), spec.hcanon, spec.bcanon,
                               spec.alg, spec.length, &st));
  REQUIRE(d);
  for (const auto& [name, value] : msg.headers) {
    std::string h = name + ":" + to_crlf(value);
    REQUIRE(dkim_header(d.get(), reinterpret_cast<unsigned char*>(h.data()), h.size()) == DKIM_STAT_OK);
  }
  REQUIRE(dkim_eoh(d.get()) == DKIM_STAT_OK);
  std::string body = msg.body;
  if (!body.empty()) REQUIRE(dkim_body(d.get(), reinterpret_cast<unsigned char*>(body.data()), body.size()) == DKIM_STAT_OK);
  st = dkim_eom(d.get(), nullptr);
  INFO(dkim_geterror(d.get()));
  REQUIRE(st == DKIM_STAT_OK);
  unsigned char* hdr = nullptr;
  std::size_t len = 0;
  REQUIRE(dkim_getsighdr_d(d.get(), sizeof DKIM_SIGNHEADER + 1, &hdr, &len) == DKIM_STAT_OK);
  return " " + std::string(reinterpret_cast<const char*>(hdr), len);
}

// base_message - a plain message from alice@dkim.example, CRLF, with a
// folded Subject (LF-folded when LF_FOLDING, as Postfix passes it on).
inline SplitMessage base_message(bool lf_folding = false) {
  const char* nl = lf_folding ? "\n" : "\r\n";
  SplitMessage m;
  m.headers = {{"From", " Alice <alice@dkim.example>"},
               {"To", " bob@other.example"},
               {"Subject", std::string(" a subject that is") + nl + "\tfolded once"},
               {"Date", " Tue, 14 Nov 2023 22:13:20 +0000"},
               {"Message-ID", " <base@dkim.example>"}};
  m.body = "Hello Bob,\r\n\r\nthe body, with  two spaces and a trailing one \r\n\r\n";
  return m;
}

// key_record - the TXT record of a test key (tests/data/dkim/keys/NAME.txt).
inline std::string key_record(const std::string& name) { return read_file(key_path(name + ".txt")); }

// data_message - tests/data/dkim/NAME, split.
inline SplitMessage data_message(const std::string& name) {
  return split_message(read_file(std::string(DMARC_TEST_DATA_DIR) + "/dkim/" + name));
}

// with_signature - MSG with a DKIM-Signature field VALUE put first.
inline SplitMessage with_signature(SplitMessage msg, std::string value) {
  msg.headers.insert(msg.headers.begin(), {"DKIM-Signature", std::move(value)});
  return msg;
}

}  // namespace dmarc::test
