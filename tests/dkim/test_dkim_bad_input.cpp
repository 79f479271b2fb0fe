// test_dkim_bad_input.cpp - garbage key records, garbage signatures, DNS
// failures: each gets a documented result and reason, and nothing crashes
// (this suite also runs under ASan/UBSan, build-dkim-asan).
//
// The tables below are the documentation: result and reason for each case
// (man page: the DKIM section of dmarc-milter(8)). A message from
// alice@dkim.example is signed in the test with a real key
// (tests/data/dkim/keys/rsa2048.pem), then its key record or its
// DKIM-Signature is spoiled.
#include <catch2/catch.hpp>

#include <functional>

#include "adapters/dkim/dkim_tags.hpp"
#include "dkim_test_util.hpp"

using dmarc::AuthResult;
using dmarc::DkimOptions;
using dmarc::DnsStatus;
using namespace dmarc::test;
namespace dk = dmarc::dkim;

namespace {

constexpr AuthResult P = AuthResult::Pass;
constexpr AuthResult F = AuthResult::Fail;
constexpr AuthResult PE = AuthResult::PermError;
constexpr AuthResult TE = AuthResult::TempError;
constexpr AuthResult N = AuthResult::Neutral;

const std::string kKeyName = "bad._domainkey.dkim.example";

std::string good_p() { return std::string(*dk::parse_tag_list(key_record("rsa2048"))->get("p")); }

// signed_by_bad - the base message signed with rsa2048.pem as selector "bad".
SplitMessage signed_by_bad(SignSpec s = {}) {
  s.key_file = "rsa2048.pem";
  s.selector = "bad";
  SplitMessage m = base_message();
  return with_signature(m, sign(m, s));
}

// set_tag - SIG with tag NAME's value replaced by VALUE (added when absent).
std::string set_tag(const std::string& sig, const std::string& name, const std::string& value) {
  for (std::size_t i = 0; i < sig.size(); ++i) {
    if (!(i == 0 || sig[i - 1] == ';' || sig[i - 1] == ' ' || sig[i - 1] == '\t' || sig[i - 1] == '\n')) continue;
    if (sig.compare(i, name.size(), name) != 0) continue;
    std::size_t eq = i + name.size();
    while (eq < sig.size() && (sig[eq] == ' ' || sig[eq] == '\t')) ++eq;
    if (eq >= sig.size() || sig[eq] != '=') continue;
    std::size_t end = sig.find(';', eq);
    if (end == std::string::npos) end = sig.size();
    return sig.substr(0, eq + 1) + value + sig.substr(end);
  }
  return sig + "; " + name + "=" + value;
}

// drop_tag - SIG without tag NAME.
std::string drop_tag(const std::string& sig, const std::string& name) {
  std::string marked = set_tag(sig, name, "\x01");
  std::size_t at = marked.find(name + "=\x01");
  REQUIRE(at != std::string::npos);
  std::size_t end = at + name.size() + 2;
  if (end < marked.size() && marked[end] == ';') ++end;
  return marked.substr(0, at) + marked.substr(end);
}

struct Outcome {
  AuthResult result;
  std::string reason;
};

Outcome run(StaticResolver& r, const SplitMessage& m, DkimOptions o = {}) {
  auto v = make_verifier(r, o);
  auto res = verify(*v, m, 5);
  REQUIRE(res.size() == 1);
  return {res[0].result, res[0].reason};
}

}  // namespace

TEST_CASE("dkim bad input: key records", "[dkim][bad]") {
  struct Case {
    std::string what, record;
    AuthResult result;
    std::string reason;
  };
  const std::string p = good_p();
  const std::vector<Case> cases = {
      {"good record (control)", "v=DKIM1; k=rsa; p=" + p, P, ""},
      {"unknown tags are ignored (RFC 6376 3.6.1)", "v=DKIM1; foo=bar; g=*; p=" + p, P, ""},
      {"PKCS#1 RSAPublicKey p=", key_record("rsa2048-pkcs1"), P, ""},
      {"bad v=", "v=DKIM2; k=rsa; p=" + p, PE, "key record v= is not DKIM1"},
      {"v= not first", "k=rsa; v=DKIM1; p=" + p, PE, "key record syntax: v= is not the first tag"},
      {"unknown k=", "v=DKIM1; k=dsa; p=" + p, PE, "unknown key type (k=)"},
      {"k=ed25519 for an RSA signature", "v=DKIM1; k=ed25519; p=" + p, PE, "key type k=ed25519 does not suit a="},
      {"empty p= (revoked)", "v=DKIM1; k=rsa; p=", PE, "key revoked (empty p=)"},
      {"no p=", "v=DKIM1; k=rsa", PE, "key record syntax: no p= tag"},
      {"p= not base64", "v=DKIM1; k=rsa; p=!!!not*base64!!!", PE, "key record syntax: p= is not base64"},
      {"p= with a bad base64 length", "v=DKIM1; k=rsa; p=" + p.substr(0, 101), PE, "key record syntax: p= is not base64"},
      {"p= base64 but not a key", "v=DKIM1; k=rsa; p=aGVsbG8gd29ybGQ=", PE, "key p= could not be decoded"},
      {"p= of another key", key_record("rsa1024"), F, "signature did not verify"},
      {"huge record (2000 octets)", "v=DKIM1; n=" + std::string(1900, 'x') + "; p=" + p, PE,
       "key record longer than 1023 octets"},
      {"NUL byte", std::string("v=DKIM1; k=rsa; p=") + p + std::string("\0junk", 5), PE,
       "key record contains a NUL byte"},
      {"duplicate tag", "v=DKIM1; p=" + p + "; p=" + p, PE, "key record syntax: duplicate tag p="},
      {"tag without value", "v=DKIM1; k=rsa; t; p=" + p, PE, "key record syntax: tag t without value"},
      {"8-bit octets", "v=DKIM1; n=caf\xc3\xa9; p=" + p, PE, "key record syntax: invalid character 0xc3 in tag-list"},
      {"empty record", "", PE, "key record syntax: empty tag-list"},
      {"garbage", "this is not a key", PE, "key record syntax: invalid character 0x69 in tag-list"},
      {"h= without sha256", "v=DKIM1; h=sha1; p=" + p, PE, "key record h= does not allow the signature's hash"},
      {"h= with only unknown hashes", "v=DKIM1; h=md5; p=" + p, PE, "key record h= lists no known hash"},
      {"s= not email", "v=DKIM1; s=chat; p=" + p, PE, "key record s= does not include email"},
  };
  for (const Case& c : cases) {
    StaticResolver r;
    r.add_txt(kKeyName, c.record);
    Outcome o = run(r, signed_by_bad());
    INFO(c.what << ": " << dmarc::to_token(o.result) << " " << o.reason);
    CHECK(o.result == c.result);
    CHECK(o.reason == c.reason);
  }
  // Two TXT records at the key name (RFC 6376 3.6.2.2: undefined).
  StaticResolver r;
  r.add_txt(kKeyName, key_record("rsa2048"));
  r.add_txt(kKeyName, key_record("rsa1024"));
  Outcome o = run(r, signed_by_bad());
  CHECK(o.result == PE);
  CHECK(o.reason == "more than one key record");
}

TEST_CASE("dkim bad input: DNS failures for the key", "[dkim][bad][dns]") {
  struct Case {
    std::string what;
    std::function<void(StaticResolver&)> setup;
    AuthResult result;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"NXDOMAIN", [](StaticResolver&) {}, PE, "no key record (nxdomain)"},
      {"NODATA", [](StaticResolver& r) { r.add_txt("x." + kKeyName, "v=DKIM1; p="); }, PE, "no key record (nodata)"},
      {"timeout / SERVFAIL (TempFail)", [](StaticResolver& r) { r.fail(kKeyName, DnsStatus::TempFail); }, TE,
       "key lookup failed: injected failure"},
      {"FORMERR / bad answer (PermFail)", [](StaticResolver& r) { r.fail(kKeyName, DnsStatus::PermFail); }, PE,
       "key lookup failed: injected failure"},
  };
  for (const Case& c : cases) {
    StaticResolver r;
    c.setup(r);
    Outcome o = run(r, signed_by_bad());
    INFO(c.what << ": " << dmarc::to_token(o.result) << " " << o.reason);
    CHECK(o.result == c.result);
    CHECK(o.reason == c.reason);
  }
}

TEST_CASE("dkim bad input: signatures with garbage tags", "[dkim][bad]") {
  StaticResolver r;
  r.add_txt(kKeyName, key_record("rsa2048"));
  const SplitMessage good = signed_by_bad();
  const std::string sig = good.headers.front().second;
  struct Case {
    std::string what;
    std::string value;  // the DKIM-Signature value
    AuthResult result;
    std::string reason;
  };
  const std::string from_x5000 = [] {
    std::string h = "From";
    for (int i = 0; i < 5000; ++i) h += ":From";
    return h;
  }();
  const std::vector<Case> cases = {
      {"good signature (control)", sig, P, ""},
      {"missing d=", drop_tag(sig, "d"), PE, "signature has no d= tag"},
      {"empty d=", set_tag(sig, "d", ""), PE, "signature has an empty d= tag"},
      {"d= not a domain name", set_tag(sig, "d", "dkim.example(.evil.example"), PE, "signature syntax: invalid d= value"},
      {"s= not a domain name", set_tag(sig, "s", "bad key"), PE, "signature syntax: invalid s= value"},
      {"missing s=", drop_tag(sig, "s"), PE, "signature has no s= tag"},
      {"bad a=", set_tag(sig, "a", "rsa-md5"), PE, "unsupported signature algorithm (a=)"},
      {"missing a=", drop_tag(sig, "a"), PE, "signature has no a= tag"},
      {"missing v=", drop_tag(sig, "v"), PE, "signature has no v= tag"},
      {"v=2", set_tag(sig, "v", "2"), PE, "unsupported signature version (v= is not 1)"},
      {"c=future", set_tag(sig, "c", "future/relaxed"), PE, "unknown header canonicalization (c=)"},
      {"c=relaxed/future", set_tag(sig, "c", "relaxed/future"), PE, "unknown body canonicalization (c=)"},
      {"h= without From", set_tag(sig, "h", "To:Subject"), PE, "h= does not include From"},
      {"empty h=", set_tag(sig, "h", ""), PE, "signature has an empty h= tag"},
      {"huge h= (5001 names)", set_tag(sig, "h", from_x5000), F, "signature did not verify"},
      {"duplicate tag d=", sig + "; d=dkim.example", PE, "signature syntax: duplicate tag d="},
      {"duplicate tag b=", sig + "; b=AAAA", PE, "signature syntax: duplicate tag b="},
      {"b= not base64", set_tag(sig, "b", "!!!!not*base64!!!!"), PE, "b= is not valid base64"},
      {"empty b=", set_tag(sig, "b", ""), PE, "signature has an empty b= tag"},
      {"b= of another message", set_tag(sig, "b", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), F,
       "signature did not verify"},
      {"missing bh=", drop_tag(sig, "bh"), PE, "signature has no bh= tag"},
      {"bh= not base64", set_tag(sig, "bh", "!!!!"), F, "signature did not verify"},
      {"x= before t=", set_tag(set_tag(sig, "t", "1700000000"), "x", "1699999999"), PE, "x= is not later than t="},
      {"x= in the past", set_tag(sig, "x", "1700000100"), PE, "signature expired (x=)"},
      {"t= far in the future", set_tag(sig, "t", "99999999999"), PE, "signature timestamp is in the future (t=)"},
      {"t= not a number", set_tag(sig, "t", "yesterday"), PE, "signature syntax: invalid t= value"},
      {"x= too long", set_tag(sig, "x", "9999999999999"), PE, "signature syntax: invalid x= value"},
      {"l= not a number", set_tag(sig, "l", "-5"), PE, "signature syntax: invalid l= value"},
      {"i= outside d=", set_tag(sig, "i", "alice@evil.example"), PE, "i= is not in the d= domain"},
      {"q=http", set_tag(sig, "q", "http"), PE, "unsupported key query method (q=)"},
      {"tag without value", sig + "; junk", PE, "signature syntax: tag junk without value"},
      {"NUL byte", sig + std::string("; z=a\0b", 7), PE, "signature syntax: invalid character 0x00 in tag-list"},
      {"8-bit octets", sig + "; z=caf\xc3\xa9", PE, "signature syntax: invalid character 0xc3 in tag-list"},
      {"empty value", "", PE, "signature syntax: empty tag-list"},
      {"only separators", " ; ;", PE, "signature syntax: empty tag-spec"},
      {"huge b= (200 KB)", set_tag(sig, "b", std::string(200000, 'A')), F, "signature did not verify"},
  };
  for (const Case& c : cases) {
    SplitMessage m = good;
    m.headers.front().second = c.value;
    Outcome o = run(r, m);
    INFO(c.what << ": " << dmarc::to_token(o.result) << " " << o.reason);
    CHECK(o.result == c.result);
    CHECK(o.reason == c.reason);
  }
}

TEST_CASE("dkim bad input: a bad d= or s= is never looked up", "[dkim][bad][dns]") {
  StaticResolver r;
  SplitMessage m = signed_by_bad();
  m.headers.front().second = set_tag(m.headers.front().second, "d", "legitimate.example(.attacker.example");
  Outcome o = run(r, m);
  CHECK(o.result == PE);
  CHECK(r.query_count() == 0);
}

TEST_CASE("dkim bad input: l= larger than the body", "[dkim][bad]") {
  StaticResolver r;
  r.add_txt(kKeyName, key_record("rsa2048"));
  SignSpec s;
  s.length = static_cast<ssize_t>(base_message().body.size());
  SplitMessage m = signed_by_bad(s);
  CHECK(run(r, m).result == P);
  m.body = "Hello\r\n";  // shorter than l=
  Outcome o = run(r, m);
  CHECK(o.result == PE);
  CHECK(o.reason == "l= is larger than the body");
}

TEST_CASE("dkim bad input: messages that are broken around the signature", "[dkim][bad]") {
  StaticResolver r;
  r.add_txt(kKeyName, key_record("rsa2048"));
  SplitMessage good = signed_by_bad();
  {
    // From removed after signing: h= names it, the message lacks it.
    SplitMessage m = good;
    m.headers.erase(m.headers.begin() + 1);
    Outcome o = run(r, m);
    CHECK(o.result == F);
    CHECK(o.reason == "signature did not verify");
  }
  {
    // Two DKIM-Signature fields, one of them malformed: each gets its own result.
    SplitMessage m = good;
    m.headers.insert(m.headers.begin(), {"DKIM-Signature", " v=1; garbage"});
    auto v = make_verifier(r);
    auto res = verify(*v, m);
    REQUIRE(res.size() == 2);
    CHECK(res[0].result == PE);
    CHECK(res[0].reason == "signature syntax: tag garbage without value");
    CHECK(res[1].result == P);
  }
  {
    // Header fields with bytes libopendkim refuses, a huge header, a bare
    // CR, no body at all: no crash, the signature still judged.
    SplitMessage m = good;
    m.headers.emplace_back("X-Binary", std::string(" a\0b\xff\r\n\tc", 9));
    m.headers.emplace_back("X-Huge", " " + std::string(300000, 'h'));
    m.headers.emplace_back("X-CR", " a\rb");
    m.headers.emplace_back("Bad Name", " value");
    m.headers.emplace_back("", " no name");
    CHECK(run(r, m).result == P);
    m.body.clear();
    CHECK(run(r, m).result == F);
  }
  {
    // Many signatures: the first 10 usable are checked, the rest neutral;
    // each of the 41 names its own selector, so only 10 keys are looked up.
    StaticResolver many;
    SplitMessage m = base_message();
    for (int i = 0; i < 41; ++i) {
      SignSpec s;
      s.key_file = "rsa2048.pem";
      s.selector = "k" + std::to_string(i);
      many.add_txt(s.selector + "._domainkey.dkim.example", key_record("rsa2048"));
      m.headers.insert(m.headers.begin() + i, {"DKIM-Signature", sign(base_message(), s)});
    }
    auto v = make_verifier(many);
    auto res = verify(*v, m);
    REQUIRE(res.size() == 41);
    for (std::size_t i = 0; i < res.size(); ++i) CHECK(res[i].result == (i < 10 ? P : N));
    CHECK(many.query_count() == 10);
  }
}

TEST_CASE("dkim bad input: mutated signatures and key records never crash", "[dkim][bad][fuzz]") {
  // A fixed seed: the same 300 mutations every run (ASan/UBSan watch them).
  std::uint32_t seed = 20240601;
  auto next = [&seed] {
    seed = seed * 1664525u + 1013904223u;
    return seed >> 8;
  };
  const SplitMessage good = signed_by_bad();
  const std::string sig = good.headers.front().second;
  const std::string record = key_record("rsa2048");
  auto mutate = [&](std::string s) {
    int edits = 1 + static_cast<int>(next() % 8);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      std::size_t at = next() % s.size();
      switch (next() % 4) {
        case 0: s[at] = static_cast<char>(next() & 0xff); break;                    // any byte
        case 1: s.erase(at, 1 + next() % 16); break;                                // cut
        case 2: s.insert(at, s.substr(next() % s.size(), next() % 64)); break;      // repeat a piece
        case 3: s.insert(at, std::string(1, ";=: \t\r\n\0"[next() % 9])); break;  // a separator
      }
    }
    return s;
  };
  int passes = 0;
  for (int i = 0; i < 300; ++i) {
    StaticResolver r;
    r.add_txt(kKeyName, i % 2 ? mutate(record) : record);
    SplitMessage m = good;
    if (i % 2 == 0) m.headers.front().second = mutate(sig);
    auto v = make_verifier(r);
    auto res = verify(*v, m, 1 + next() % 50);
    REQUIRE(res.size() == 1);
    CHECK((res[0].result == P) == res[0].reason.empty());
    if (res[0].result == P) ++passes;
  }
  // A mutation may hit only FWS or an unsigned part, but most must not pass.
  CHECK(passes < 60);
}
