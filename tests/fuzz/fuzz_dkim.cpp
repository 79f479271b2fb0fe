// fuzz_dkim - DKIM-Signature fields and key TXT records, as the network and
// DNS give them, through our DKIM adapter (src/adapters/dkim, libopendkim).
//
// Input: the first byte holds options; the rest is fields split at 0x1E
// (RS), 0x1D (GS) making the next byte literal (so every byte reaches every
// field):
//   DNS RS NAME:VALUE RS ... RS RS CHUNK RS CHUNK ...
// DNS is the key records, "NAME VALUE" lines as in the stalwart vectors;
// with option 0x04 the whole of DNS after its first space is one record,
// answered for every *._domainkey.* name (LF, NUL, anything, inside it).
// Options 0x03: 0 records as given, 1 every key query fails (TempFail),
// 2 PermFail, 3 each record given twice (RFC 6376 3.6.2.2: several key
// records). The header fields follow (a DKIM-Signature among them), then
// the body chunks (CRLF text as the milter gives it, split anywhere).
//
// Also straight into our own parsers: each field as a tag-list
// (parse_tag_list), as a key record (prepare_key_record), and base64.
//
// Invariants:
//   - no crash, no leak, no hang (libopendkim included: a library crash or
//     hang found here gets a guard in the adapter and a regression test in
//     tests/dkim/test_dkim_bad_input.cpp);
//   - one result per DKIM-Signature field (at most kMaxDkimResults, the rest
//     counted by omitted()), each pass, fail, neutral, policy, permerror or
//     temperror, with a reason unless pass; a pass names the d= and s= of
//     some signature field, and its d= is lower case;
//   - a DNS failure never gives pass: TempFail gives temperror;
//   - the results do not depend on how the body is chunked, nor on whether
//     header fields are folded with CRLF or bare LF (dkim.hpp: both are
//     accepted), nor on the key cache (the second message hits it);
//   - parse_tag_list accepts no repeated tag and no empty tag name;
//     base64_encode output decodes to its input; prepare_key_record's
//     output has no NUL and fits kMaxKeyRecord.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "fuzz_split.hpp"
#include "adapters/dkim/dkim_key_record.hpp"
#include "adapters/dkim/dkim_tags.hpp"
#include "dmarc/adapters/dkim.hpp"
#include "dmarc/core/domain.hpp"

using namespace dmarc;

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_dkim: property violated: %s\n", what);
    std::abort();
  }
}

// KeyZone - answers TXT queries of _domainkey names from the input.
class KeyZone : public Resolver {
 public:
  std::vector<std::pair<std::string, std::string>> records;  // name (lower case) -> value
  std::string wildcard;
  bool has_wildcard = false;
  int mode = 0;

  DnsAnswer query(std::string_view name, RRType type) override {
    DnsAnswer a;
    if (mode == 1) return a;  // TempFail
    if (mode == 2) {
      a.status = DnsStatus::PermFail;
      return a;
    }
    a.status = DnsStatus::NxDomain;
    if (type != RRType::TXT) return a;
    std::string n = ascii_lowercase(name);
    while (!n.empty() && n.back() == '.') n.pop_back();
    if (has_wildcard && n.find("._domainkey.") != std::string::npos) a.records.push_back(wildcard);
    for (const auto& [rn, v] : records)
      if (rn == n) a.records.push_back(v);
    if (mode == 3) {
      auto copy = a.records;
      a.records.insert(a.records.end(), copy.begin(), copy.end());
    }
    if (!a.records.empty()) a.status = DnsStatus::Ok;
    return a;
  }
};

using dmarc::fuzz::split;

using Row = std::tuple<AuthResult, std::string, std::string, std::string, unsigned, bool, bool>;

std::vector<Row> run(DkimVerifier& v, const std::vector<std::pair<std::string, std::string>>& headers,
                     const std::vector<std::string>& chunks, std::size_t& omitted) {
  auto m = v.begin("FUZZ");
  check(m != nullptr, "begin() gave no message");
  for (const auto& [n, val] : headers) m->header(n, val);
  m->end_of_headers();
  for (const auto& c : chunks) m->body(c);
  std::vector<Row> rows;
  for (const auto& r : m->finish())
    rows.emplace_back(r.result, r.domain, r.selector, r.reason, r.key_bits, r.body_length, r.test_key);
  omitted = m->omitted();
  return rows;
}

// lf_folded - VALUE with CRLF line ends as bare LF; nullopt when it has a
// CR that is not part of a CRLF (then the two forms are not equivalent).
std::optional<std::string> lf_folded(const std::string& value) {
  std::string out;
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\r') {
      if (i + 1 < value.size() && value[i + 1] == '\n') continue;
      return std::nullopt;
    }
    out += value[i];
  }
  return out;
}

void own_parsers(std::string_view field) {
  auto tags = dkim::parse_tag_list(field);
  if (tags) {
    std::set<std::string> names;
    for (const auto& [n, v] : tags->tags()) {
      check(!n.empty(), "a tag without a name");
      check(names.insert(n).second, "a repeated tag accepted");
      check(tags->get(n).has_value(), "get() misses a parsed tag");
    }
  }
  auto key = dkim::prepare_key_record(field);
  if (key) {
    check(key->find('\0') == std::string::npos, "a key record with NUL passed on");
    check(key->size() <= dkim::kMaxKeyRecord, "a key record over kMaxKeyRecord passed on");
  }
  std::vector<unsigned char> bytes(field.begin(), field.end());
  auto back = dkim::base64_decode(dkim::base64_encode(bytes));
  check(back && *back == bytes, "base64 does not round-trip");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1 || size > 128 * 1024) return -1;
  static KeyZone zone;
  static std::unique_ptr<DkimVerifier> verifier = [] {
    auto v = DkimVerifier::create(zone);
    if (!v) {
      std::fprintf(stderr, "fuzz_dkim: %s\n", v.error().c_str());
      std::abort();
    }
    return std::move(v.value());
  }();
  const std::uint8_t opts = data[0];
  std::vector<std::string> f = split(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));

  zone.records.clear();
  zone.has_wildcard = (opts & 0x04) != 0;
  zone.mode = opts & 0x03;
  const std::string& dns = f[0];
  if (zone.has_wildcard) {
    std::size_t sp = dns.find(' ');
    zone.wildcard = sp == std::string::npos ? dns : dns.substr(sp + 1);
  } else {
    std::size_t pos = 0;
    while (pos <= dns.size()) {
      std::size_t lf = dns.find('\n', pos);
      std::string line = dns.substr(pos, lf == std::string::npos ? std::string::npos : lf - pos);
      std::size_t sp = line.find(' ');
      if (sp != std::string::npos) {
        std::string name = ascii_lowercase(line.substr(0, sp));
        while (!name.empty() && name.back() == '.') name.pop_back();
        std::size_t v = line.find_first_not_of(" \t", sp);
        zone.records.emplace_back(name, v == std::string::npos ? "" : line.substr(v));
      }
      if (lf == std::string::npos) break;
      pos = lf + 1;
    }
  }

  std::vector<std::pair<std::string, std::string>> headers;
  std::size_t i = 1;
  for (; i < f.size() && !f[i].empty(); ++i) {
    std::size_t colon = f[i].find(':');
    if (colon == std::string::npos)
      headers.emplace_back(f[i], "");
    else
      headers.emplace_back(f[i].substr(0, colon), f[i].substr(colon + 1));
  }
  std::vector<std::string> chunks(f.begin() + static_cast<std::ptrdiff_t>(std::min(i + 1, f.size())), f.end());

  for (const auto& field : f) own_parsers(field);

  std::size_t omitted = 0;
  std::vector<Row> rows = run(*verifier, headers, chunks, omitted);

  if (std::getenv("FUZZ_DKIM_VERBOSE"))
    for (const auto& r : rows)
      std::fprintf(stderr, "dkim=%d d=%s s=%s reason=%s\n", static_cast<int>(std::get<0>(r)), std::get<1>(r).c_str(),
                   std::get<2>(r).c_str(), std::get<3>(r).c_str());
  std::size_t sig_fields = 0;
  std::set<std::pair<std::string, std::string>> signed_ds;  // (d, s) of every signature field
  for (const auto& [n, v] : headers) {
    if (!ascii_iequals(n, "DKIM-Signature")) continue;
    ++sig_fields;
    if (auto t = dkim::parse_tag_list(v)) {
      auto d = t->get("d");
      auto s = t->get("s");
      if (d && s) signed_ds.emplace(ascii_lowercase(dkim::strip_fws(*d)), dkim::strip_fws(*s));
    }
  }
  check(rows.size() + omitted == sig_fields, "not one result per DKIM-Signature field");
  check(rows.size() <= kMaxDkimResults, "more results than kMaxDkimResults");
  for (const auto& [result, d, s, reason, bits, l, t] : rows) {
    switch (result) {
      case AuthResult::Pass:
        check(signed_ds.count({d, s}) == 1, "a pass for a d=/s= no signature has");
        check(ascii_lowercase(d) == d, "d= not lower case");
        check(zone.mode == 0 || zone.mode == 3, "a pass without a key answer");
        break;
      case AuthResult::Fail:
      case AuthResult::Neutral:
      case AuthResult::Policy:
      case AuthResult::PermError:
      case AuthResult::TempError:
        check(!reason.empty(), "a result other than pass without a reason");
        break;
      default:
        check(false, "an undocumented DKIM result");
    }
    if (zone.mode == 1) check(result != AuthResult::Pass && result != AuthResult::Fail, "TempFail gave a verdict");
  }

  // The same message with the body in one chunk and LF-folded headers.
  std::vector<std::pair<std::string, std::string>> lf_headers;
  bool lf_ok = true;
  for (const auto& [n, v] : headers) {
    auto lf = lf_folded(v);
    if (!lf) lf_ok = false;
    lf_headers.emplace_back(n, lf ? *lf : v);
  }
  std::string whole;
  for (const auto& c : chunks) whole += c;
  std::size_t omitted2 = 0;
  std::vector<Row> again = run(*verifier, lf_ok ? lf_headers : headers, {whole}, omitted2);
  if (again != rows || omitted2 != omitted) {
    for (std::size_t k = 0; k < rows.size() && k < again.size(); ++k)
      std::fprintf(stderr, "fuzz_dkim: #%zu %d '%s' / %d '%s'\n", k, static_cast<int>(std::get<0>(rows[k])),
                   std::get<3>(rows[k]).c_str(), static_cast<int>(std::get<0>(again[k])), std::get<3>(again[k]).c_str());
  }
  check(again == rows && omitted2 == omitted,
        lf_ok ? "results depend on body chunking or LF folding" : "results depend on body chunking");
  return 0;
}
