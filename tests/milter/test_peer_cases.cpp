// test_peer_cases.cpp - the bugs of our peers, replayed (issue 16 item 4)
//
// Each case names the peer's CVE or issue it replays and checks that
// dmarc-milter's Session (the per-message logic the milter runs) gives the
// right outcome. DNS is a StaticResolver; no MTA is needed.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "dmarc/core/auth_results.hpp"
#include "session_fixture.hpp"

using namespace dmarc;
using namespace dmarc::milter;

using namespace dmarc::milter::fixture;

namespace {

// session_fixture's zone, and what these cases need besides.
std::shared_ptr<test::StaticResolver> peer_world() {
  auto dns = world();
  dns->add_txt("helo.other.example", "v=spf1 ip4:198.51.100.0/24 -all");
  dns->add_txt("_dmarc.strict.example", "v=DMARC1; p=reject; aspf=s; adkim=s");
  dns->add_txt("mail.strict.example", "v=spf1 ip4:192.0.2.0/24 -all");
  dns->add_txt("_dmarc.v6.example", "v=DMARC1; p=reject");
  dns->add_txt("v6.example", "v=spf1 ip6:2001:db8:1::25 ip6:2001:db8:2::/48 -all");
  return dns;
}

Outcome run(const Msg& m) { return fixture::run(engine("IgnoreHosts 127.0.0.1\n", peer_world()), m); }

// The field we insert is one header field: a line break only as folding
// (LF then TAB), never CR, never a line that starts a new field.
void one_field(const Outcome& o) {
  REQUIRE(o.ar_value);
  const std::string& v = *o.ar_value;
  INFO(v);
  CHECK(v.find('\r') == std::string::npos);
  CHECK(v.find('\0') == std::string::npos);
  for (std::size_t i = v.find('\n'); i != std::string::npos; i = v.find('\n', i + 1)) {
    REQUIRE(i + 1 < v.size());
    CHECK(v[i + 1] == '\t');
  }
}

}  // namespace

TEST_CASE("peer OpenDMARC CVE-2019-20790: an SPF pass for HELO does not count when MAIL FROM is another domain",
          "[peer][cve]") {
  // The client passes SPF for its HELO name, not for the MAIL FROM domain;
  // DMARC must use the MAIL FROM result (RFC 7489 4.1), which fails.
  Msg m;
  m.ip = "198.51.100.7";
  m.helo = "helo.other.example";
  Outcome o = run(m);
  REQUIRE(o.spf);
  CHECK(o.spf->scope == SpfScope::MailFrom);
  CHECK(o.spf->result == AuthResult::Fail);
  REQUIRE(o.verdicts.size() == 1);
  CHECK(o.verdicts[0].result == DmarcResult::Fail);
  CHECK(o.decision.action == Action::Reject);
}

TEST_CASE("peer OpenDMARC CVE-2020-12272: 'example.net(.example.com' is read as example.net", "[peer][cve]") {
  // In an Authentication-Results field: the authserv-id ends at the comment.
  auto id = authserv_id_of(" mx.test.example(.evil.example); dmarc=pass");
  REQUIRE(id);
  CHECK(*id == "mx.test.example");
  // So a forged field written that way is ours, and removed.
  Msg m;
  m.headers.insert(m.headers.begin(), {"Authentication-Results", " mx.test.example(.evil.example; dmarc=pass"});
  Outcome o = run(m);
  CHECK(o.deletions.size() == 1);
  // In From, the comment is not a domain: the author is reject.example.
  Msg f;
  f.ip = "203.0.113.9";
  f.mail_from = "x@evil.example";
  f.headers = {{"From", " alice@reject.example(.evil.example"}};
  Outcome of = run(f);
  CHECK(of.decision.action == Action::Reject);
}

TEST_CASE("peer OpenDMARC #268: strict alignment does not pass through the organizational domain", "[peer]") {
  // SPF passes for mail.strict.example; aspf=s needs the From domain itself.
  Msg m;
  m.mail_from = "bounce@mail.strict.example";
  m.headers = {{"From", " alice@strict.example"}};
  Outcome o = run(m);
  REQUIRE(o.spf);
  CHECK(o.spf->result == AuthResult::Pass);
  REQUIRE(o.verdicts.size() == 1);
  CHECK(o.verdicts[0].spf_alignment == Alignment::Fail);
  CHECK(o.verdicts[0].result == DmarcResult::Fail);
  CHECK(o.decision.action == Action::Reject);
}

TEST_CASE("peer OpenDMARC #274: ip6: with a single address and with a prefix, no trailing colon", "[peer]") {
  for (const char* ip : {"2001:db8:1::25", "2001:db8:2::7"}) {
    INFO(ip);
    Msg m;
    m.ip = ip;
    m.mail_from = "a@v6.example";
    m.headers = {{"From", " a@v6.example"}};
    Outcome o = run(m);
    REQUIRE(o.spf);
    CHECK(o.spf->result == AuthResult::Pass);
    CHECK(o.decision.action == Action::Accept);
  }
  Msg bad;
  bad.ip = "2001:db8:1::26";
  bad.mail_from = "a@v6.example";
  bad.headers = {{"From", " a@v6.example"}};
  CHECK(run(bad).decision.action == Action::Reject);
}

TEST_CASE("peer OpenDMARC #183 #222 #236 #242: ARC fields with a token without '=' or a 512+ octet b=", "[peer]") {
  Msg m;
  m.headers.insert(m.headers.begin(), {"ARC-Seal", " i=1; a=rsa-sha256; cv=none; d=relay.example; s=arc; t=1; b=" +
                                                       std::string(700, 'A')});
  m.headers.insert(m.headers.begin(), {"ARC-Authentication-Results", " i=1; relay.example; dkim; spf=pass smtp.mailfrom"});
  m.headers.insert(m.headers.begin(), {"ARC-Message-Signature", " i=1; novalue; b=" + std::string(600, 'B')});
  Outcome o = run(m);
  CHECK(o.decision.action == Action::Accept);  // aligned SPF: the ARC fields change nothing
  one_field(o);
}

TEST_CASE("peer OpenDKIM CVE-2022-48521: several forged Authentication-Results fields are all removed", "[peer][cve]") {
  Msg m;
  for (int i = 0; i < 3; ++i)
    m.headers.insert(m.headers.begin(), {"Authentication-Results", " mx.test.example; dkim=pass header.d=reject.example"});
  m.headers.insert(m.headers.begin() + 1, {"Authentication-Results", " other.example; spf=pass"});
  Outcome o = run(m);
  REQUIRE(o.deletions.size() == 3);
  CHECK(o.deletions[0].index > o.deletions[1].index);
  CHECK(o.deletions[1].index > o.deletions[2].index);
}

TEST_CASE("peer mail-auth 0.9.1: CR, LF or ';' in HELO, MAIL FROM, d= and s= cannot inject into our field",
          "[peer][security]") {
  Msg m;
  m.ip = "203.0.113.9";
  m.helo = "evil.example\r\nX-Injected: helo; spf=pass";
  m.mail_from = "a;b\r\nX-Injected: 1@evil.example";
  m.headers.push_back({"DKIM-Signature", " v=1; a=rsa-sha256; d=evil.example\r\nX-Injected: d; s=sel;dkim=pass\r\n "
                                         "; h=from; bh=AAAA; b=AAAA"});
  Outcome o = run(m);
  one_field(o);
  CHECK(o.ar_value->find("\nX-Injected") == std::string::npos);
  CHECK(o.decision.action == Action::Reject);  // nothing passes for reject.example
}

TEST_CASE("peer Composition Kills (USENIX Security 2020): From ambiguities never pass as another domain",
          "[peer][security]") {
  // The attacker's own domain passes SPF and DKIM would align with it;
  // each From below shows reject.example to a reader.
  const std::vector<std::vector<std::pair<std::string, std::string>>> cases = {
      {{"From", " alice@reject.example"}, {"From", " mallory@evil.example"}},      // two From fields
      {{"From", " alice@reject.example, mallory@evil.example"}},                   // two mailboxes
      {{"From", " \"alice@reject.example\" <mallory@evil.example>"}},              // display name  (evil decides: checked)
      {{"From", " alice@reject.example <mallory@evil.example>"}},                  // unquoted address-looking name
      {{"From", " <alice@reject.example>, <>"}},                                   // an empty address after it
      {{"From", " alice@reject.example\r\n\t(comment), mallory@evil.example"}},    // folded
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    INFO("case " << i << ": " << cases[i][0].second);
    Msg m;
    m.ip = "203.0.113.9";  // not in reject.example's SPF
    m.mail_from = "mallory@evil.example";
    m.headers = cases[i];
    Outcome o = run(m);
    // Never accepted as a DMARC pass for reject.example.
    bool reject_pass = false;
    for (const auto& v : o.verdicts)
      if (v.author_domain == "reject.example" && v.result == DmarcResult::Pass) reject_pass = true;
    CHECK_FALSE(reject_pass);
    // Where reject.example is an author, its p=reject decides.
    bool names_reject = false;
    for (const auto& v : o.verdicts) names_reject = names_reject || v.author_domain == "reject.example";
    if (names_reject) CHECK(o.decision.action == Action::Reject);
  }
}
