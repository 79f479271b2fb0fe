// test_session.cpp - the milter's per-message logic (Session) over an in-memory zone
//
// The same Session class serves libmilter and --eval; here it is driven
// directly, with DNS from a StaticResolver, so each rule is checked
// without an MTA. The end-to-end suite repeats the main cases through a
// real Postfix.
#include <catch2/catch.hpp>

#include <fstream>

#include "dmarc/config/config.hpp"
#include "dmarc/core/from_header.hpp"
#include "engine.hpp"
#include "eval.hpp"
#include "session.hpp"
#include "support/dkim_signer.hpp"
#include "session_fixture.hpp"
#include "support/static_resolver.hpp"

using namespace dmarc;
using namespace dmarc::milter;

using namespace dmarc::milter::fixture;

namespace {

bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

}  // namespace

TEST_CASE("session: aligned SPF pass is accepted with Authentication-Results", "[session]") {
  Outcome o = run(engine(), Msg{});
  CHECK(o.decision.action == Action::Accept);
  REQUIRE(o.ar_value);
  CHECK(has(*o.ar_value, " mx.test.example;"));
  CHECK(has(*o.ar_value, "spf=pass smtp.mailfrom=reject.example"));
  CHECK(has(*o.ar_value, "dkim=none"));
  CHECK(has(*o.ar_value, "dmarc=pass (p=reject sp=reject dis=none) header.from=reject.example policy.dmarc=reject"));
  CHECK(has(o.log_line, "qid=QID1 ip=192.0.2.10 from=reject.example spf=pass:reject.example dkim=none dmarc=pass"));
  CHECK(has(o.log_line, "action=accept reason=-"));
}

TEST_CASE("session: spoofs under p=reject, quarantine and none", "[session]") {
  auto e = engine();
  Msg m;
  m.ip = "203.0.113.5";
  Outcome o = run(e, m);
  CHECK(o.decision.action == Action::Reject);
  CHECK(o.decision.rcode == "550");
  CHECK(o.decision.xcode == "5.7.1");
  CHECK(o.decision.text == "Message rejected by the DMARC policy of reject.example");
  CHECK(has(o.log_line, "dmarc=fail policy=reject disposition=reject action=reject reason=dmarc_reject"));

  m.mail_from = "alice@quarantine.example";
  m.headers[0].second = " alice@quarantine.example";
  o = run(e, m);
  CHECK(o.decision.action == Action::Quarantine);
  REQUIRE(o.quarantine_header);
  CHECK(o.quarantine_header->first == "X-DMARC-Quarantine");
  CHECK_FALSE(o.decision.hold);
  o = run(engine("QuarantineAction hold\n"), m);
  CHECK(o.decision.hold);
  CHECK_FALSE(o.quarantine_header);

  m.mail_from = "alice@none.example";
  m.headers[0].second = " alice@none.example";
  o = run(e, m);
  CHECK(o.decision.action == Action::Accept);
  CHECK(has(*o.ar_value, "dmarc=fail (p=none sp=none dis=none) header.from=none.example policy.dmarc=none"));

  // Report-only: nothing enforced, A-R still written.
  m.mail_from = "alice@reject.example";
  m.headers[0].second = " alice@reject.example";
  o = run(engine("RejectFailures no\n"), m);
  CHECK(o.decision.action == Action::Accept);
  CHECK(o.decision.reason == "report_only");
  CHECK(has(*o.ar_value, "dmarc=fail"));
}

TEST_CASE("session: null MAIL FROM is checked with the HELO identity", "[session]") {
  Msg m;
  m.ip = "198.51.100.20";
  m.helo = "helo.reject.example";
  m.mail_from = "";
  m.headers[0].second = " MAILER-DAEMON@helo.reject.example";
  Outcome o = run(engine(), m);
  REQUIRE(o.spf);
  CHECK(o.spf->scope == SpfScope::Helo);
  CHECK(o.spf->result == AuthResult::Pass);
  CHECK(has(*o.ar_value, "spf=pass smtp.helo=helo.reject.example"));
  // helo.reject.example is below reject.example: relaxed alignment passes.
  CHECK(o.decision.action == Action::Accept);
  CHECK(has(*o.ar_value, "dmarc=pass"));
}

TEST_CASE("session: forged Authentication-Results with our authserv-id are removed, highest first", "[session][security]") {
  Msg m;
  m.headers.insert(m.headers.begin(), {"Authentication-Results", " other.example; spf=pass"});
  m.headers.insert(m.headers.begin(), {"Authentication-Results", " mx.test.example; dmarc=pass"});
  m.headers.push_back({"Authentication-Results", " MX.TEST.EXAMPLE; dkim=pass"});
  m.headers.push_back({"Authentication-Results", " mx2.test.example; dkim=pass"});
  Outcome o = run(engine("OwnAuthservIDs mx2.test.example\n"), m);
  REQUIRE(o.deletions.size() == 3);
  CHECK(o.deletions[0].index == 4);
  CHECK(o.deletions[1].index == 3);
  CHECK(o.deletions[2].index == 1);
  CHECK(o.deletions[0].name == "Authentication-Results");
  CHECK(has(o.log_line, "removed_ar=3"));
  // OpenDMARC's TrustedAuthservIDs names ids whose results OpenDMARC
  // trusts: read with a warning that says so, and those fields are kept.
  auto cfg = parse_config("AuthservID mx.test.example\nTrustedAuthservIDs mx2.test.example\n", "opendmarc.conf");
  REQUIRE(cfg);
  REQUIRE(cfg->warnings.size() == 1);
  CHECK(cfg->warnings[0].str().rfind("opendmarc.conf:2: OpenDMARC key 'TrustedAuthservIDs' ignored: ", 0) == 0);
  CHECK(has(cfg->warnings[0].str(), "OwnAuthservIDs"));
  o = run(engine("TrustedAuthservIDs mx2.test.example\n"), m);
  CHECK(o.deletions.size() == 2);
}

TEST_CASE("session: missing, unreadable and several From fields", "[session][badinput]") {
  auto e = engine();
  Msg m;
  m.headers = {{"To", " bob@test.example"}};
  Outcome o = run(e, m);
  CHECK(o.decision.action == Action::Reject);
  CHECK(o.decision.reason == "no_from");
  CHECK(has(*o.ar_value, "dmarc=permerror (no_from)"));
  o = run(engine("BadFromAction accept\n"), m);
  CHECK(o.decision.action == Action::Accept);

  // A field that does not parse is read for every domain in it: OpenDMARC
  // #342's stray ">" no longer costs legitimate mail, and a spoof in it
  // meets the policy.
  m.headers = {{"From", " alice@reject.example>"}};
  o = run(e, m);
  CHECK(o.decision.action == Action::Accept);  // SPF-aligned, from reject.example's network
  CHECK(has(o.log_line, "from=reject.example"));
  CHECK(has(o.log_line, "from_note=malformed:unbalanced_angle"));
  Msg spoof = m;
  spoof.ip = "203.0.113.5";
  CHECK(run(e, spoof).decision.action == Action::Reject);
  m.headers = {{"From", std::string(" alice@reject.example\0evil", 26)}};
  CHECK(has(run(e, m).log_line, "from=reject.example"));
  spoof.headers = m.headers;
  CHECK(run(e, spoof).decision.reason == "dmarc_reject");
  // Long but valid (under kMaxFromHeaderLength), and over it.
  m.headers = {{"From", " " + std::string(20000, 'a') + "@reject.example"}};
  CHECK(run(e, m).decision.action == Action::Accept);
  m.headers = {{"From", " " + std::string(kMaxFromHeaderLength, 'a') + "@reject.example"}};
  CHECK(run(e, m).decision.reason == "bad_from");  // the domain lies beyond what is read
  m.headers = {{"From", " no address here"}};
  CHECK(run(e, m).decision.reason == "bad_from");
  // The sloppy mailers of issue 12, for a domain without DMARC and one with.
  for (std::string f : {" Smith, John <j@nodmarc.example>", " user@nodmarc.example <user@nodmarc.example>",
                        " \"Name\" user@nodmarc.example"}) {
    CAPTURE(f);
    m.headers = {{"From", f}};
    o = run(e, m);
    CHECK(o.decision.action == Action::Accept);
    CHECK(o.decision.reason.empty());
  }
  m.headers = {{"From", " undisclosed-recipients:;"}};
  o = run(e, m);
  CHECK(o.decision.action == Action::Accept);
  CHECK(o.decision.reason == "no_author_domain");
  spoof.headers = {{"From", " Smith, John <j@reject.example>"}};
  CHECK(run(e, spoof).decision.action == Action::Reject);

  // Two domains: each is checked, the strictest wins (CVE-2019-16378).
  m.ip = "203.0.113.5";
  m.mail_from = "x@none.example";
  m.headers = {{"From", " a@none.example, b@reject.example"}};
  o = run(e, m);
  REQUIRE(o.verdicts.size() == 2);
  CHECK(o.decision.action == Action::Reject);
  CHECK(has(o.log_line, "from=none.example,reject.example"));
  // Two From fields count the same way.
  m.headers = {{"From", " a@none.example"}, {"From", " b@reject.example"}};
  CHECK(run(e, m).decision.action == Action::Reject);
  CHECK(run(engine("RejectMultiValueFrom yes\n"), m).decision.reason == "multi_from");
  m.headers = {{"From", " a@none.example, b@none.example"}};
  CHECK(run(engine("RejectMultiValueFrom yes\n"), m).decision.action == Action::Accept);  // one domain
  m.headers = {{"From", " a@a.example, b@b.example, c@c.example"}};
  CHECK(run(engine("MaxFromDomains 2\n"), m).decision.reason == "too_many_from_domains");
  // RequiredHeaders: exactly one From and Date.
  m.headers = {{"From", " a@none.example"}};
  CHECK(run(engine("RequiredHeaders yes\n"), m).decision.reason == "required_headers");
  m.headers = {{"From", " a@none.example"}, {"Date", " Sun, 22 Nov 2026 10:00:00 +0000"}};
  CHECK(run(engine("RequiredHeaders yes\n"), m).decision.action == Action::Accept);
}

TEST_CASE("session: ignored hosts and SMTP-AUTH clients are not checked", "[session]") {
  Msg m;
  m.ip = "203.0.113.5";
  m.headers.push_back({"Authentication-Results", " mx.test.example; dmarc=pass"});
  Outcome o = run(engine("IgnoreHosts 203.0.113.0/24\n"), m);
  CHECK_FALSE(o.checked);
  CHECK(o.skip_reason == "ignored_host");
  CHECK(o.decision.action == Action::Accept);
  CHECK_FALSE(o.ar_value);
  CHECK(o.deletions.size() == 1);  // forged fields go all the same
  m.auth = "alice";
  o = run(engine(), m);
  CHECK(o.skip_reason == "authenticated");
  CHECK(has(o.log_line, "skipped=authenticated"));
  o = run(engine("IgnoreAuthenticatedClients no\n"), m);
  CHECK(o.checked);
  CHECK(o.decision.action == Action::Reject);
}

TEST_CASE("session: a trusted forwarder's failing mail is accepted", "[session]") {
  Msg m;
  m.ip = "203.0.113.5";
  Outcome o = run(engine("TrustedForwarders 203.0.113.0/28\n"), m);
  CHECK(o.decision.action == Action::Accept);
  CHECK(o.decision.reason == "trusted_forwarder");
  REQUIRE(o.forwarder);
  REQUIRE(o.verdicts.size() == 1);
  REQUIRE(o.verdicts[0].overrides.size() == 1);
  CHECK(o.verdicts[0].overrides[0] == OverrideReason::TrustedForwarder);
  CHECK(has(*o.ar_value, "override=trusted_forwarder"));
  CHECK(has(o.log_line, "forwarder=203.0.113.0/28"));
  m.ip = "203.0.113.77";
  CHECK(run(engine("TrustedForwarders 203.0.113.0/28\n"), m).decision.action == Action::Reject);
}

TEST_CASE("session: DNS failures follow DNSFailureAction", "[session][badinput]") {
  Msg m;
  m.ip = "203.0.113.5";
  m.mail_from = "a@broken.example";
  m.headers = {{"From", " a@broken.example"}};
  Outcome o = run(engine(), m);
  CHECK(o.decision.action == Action::Accept);
  CHECK(o.decision.reason == "dns_temperror");
  CHECK(has(*o.ar_value, "dmarc=temperror"));
  o = run(engine("DNSFailureAction tempfail\n"), m);
  CHECK(o.decision.action == Action::TempFail);
  CHECK(o.decision.rcode == "451");
}

TEST_CASE("session: untrusted text in the log line is sanitised", "[session][security]") {
  Msg m;
  m.helo = "evil\r\nhelo=x";
  m.mail_from = "";
  m.ip = "203.0.113.5";
  Outcome o = run(engine(), m);
  CHECK(o.log_line.find('\r') == std::string::npos);
  CHECK(o.log_line.find('\n') == std::string::npos);
  CHECK(has(o.log_line, "spf="));
  CHECK(sanitize_log("a b=c\x01") == "a?b?c?");
  CHECK(sanitize_log(std::string(300, 'x'), 10) == "xxxxxxxxxx...");
  REQUIRE(o.ar_value);
  CHECK(o.ar_value->find('\r') == std::string::npos);
}

TEST_CASE("session: a message aborted half-way leaves nothing behind", "[session]") {
  auto e = engine();
  Session s(e);
  s.connect("c", "203.0.113.5");
  s.helo("h");
  s.envfrom("a@reject.example", "", "Q1");
  s.header("From", " a@reject.example");
  s.header("Authentication-Results", " mx.test.example; none");
  s.abort();
  s.envfrom("a@reject.example", "", "Q2");
  s.header("From", " a@none.example");
  s.eoh();
  Outcome o = s.eom("Q2");
  CHECK(o.deletions.empty());
  REQUIRE(o.verdicts.size() == 1);
  CHECK(o.verdicts[0].author_domain == "none.example");
}

TEST_CASE("session: RCPT TO addresses reach the facts; eom always resets", "[session]") {
  auto e = engine();
  Session s(e);
  s.connect("c", "192.0.2.10");
  s.helo("mail.reject.example");
  s.envfrom("alice@reject.example", "", "Q1");
  s.rcpt("bob@rcpt.example");
  s.rcpt("carol@other.example");
  s.header("From", " alice@reject.example");
  s.eoh();
  Outcome o = s.eom("Q1");
  CHECK(o.facts.rcpt_to == std::vector<std::string>{"bob@rcpt.example", "carol@other.example"});
  CHECK(o.facts.mail_from == "alice@reject.example");
  CHECK(o.facts.queue_id == "Q1");
  // The next message starts with none of it.
  s.envfrom("alice@reject.example", "", "Q2");
  s.header("From", " alice@reject.example");
  o = s.eom("Q2");
  CHECK(o.facts.rcpt_to.empty());
}

TEST_CASE("eval: split_message reads headers, folding and body", "[eval]") {
  SplitMessage m = split_message("From: a@b.example\nSubject: one\n two\nX-Empty:\n\nbody line\nlast");
  REQUIRE(m.headers.size() == 3);
  CHECK(m.headers[0] == std::make_pair(std::string("From"), std::string(" a@b.example")));
  CHECK(m.headers[1].second == " one\r\n two");
  CHECK(m.headers[2].second.empty());
  CHECK(m.body == "body line\r\nlast");
  SplitMessage none = split_message("From: a@b.example\r\n");
  CHECK(none.headers.size() == 1);
  CHECK(none.body.empty());
}

TEST_CASE("session: DKIMAllowUnsignedTrailer decides an l= signature with text after the signed part",
          "[session][dkim]") {
  // RFC 6376 8.2. The signature is the only aligned identifier (SPF is for
  // none.example), so the DKIM result decides DMARC under p=reject.
  auto dns = world();
  std::string record;
  {
    std::ifstream in(std::string(DMARC_TEST_DATA_DIR) + "/dkim/keys/rsa2048.txt");
    std::getline(in, record);
  }
  dns->add_txt("sel._domainkey.reject.example", record);
  const std::string body = "Hello\r\n";
  std::string signed_msg = test::dkim_sign_message(
      "From: Alice <alice@reject.example>\r\nTo: bob@test.example\r\nSubject: hi\r\n\r\n" + body, "reject.example",
      "sel", std::string(DMARC_TEST_DATA_DIR) + "/dkim/keys/rsa2048.pem", false, static_cast<long>(body.size()));
  SplitMessage split = split_message(signed_msg);
  Msg m;
  m.mail_from = "bounces@none.example";
  m.headers = split.headers;
  m.body = split.body + "Unsigned text a list or an attacker appended.\r\n";

  Outcome strict = run(engine("", dns), m);
  REQUIRE(strict.ar_value);
  CHECK(has(*strict.ar_value, "dkim=policy"));
  CHECK(strict.decision.action == Action::Reject);

  Outcome lenient = run(engine("DKIMAllowUnsignedTrailer yes\n", dns), m);
  REQUIRE(lenient.ar_value);
  CHECK(has(*lenient.ar_value, "dkim=pass"));
  CHECK(lenient.decision.action == Action::Accept);

  m.body = split.body;  // nothing after l=: a pass either way
  Outcome whole = run(engine("", dns), m);
  CHECK(whole.decision.action == Action::Accept);
}

TEST_CASE("session: the header section and body are kept only for failure reports that ask for them", "[session]") {
  Msg m;
  m.ip = "203.0.113.5";
  Outcome off = run(engine(), m);
  CHECK(off.header_section.empty());
  CHECK(off.body_section.empty());
  Outcome headers = run(engine("FailureReports yes\n"), m);
  CHECK(headers.header_section == "From: Alice <alice@reject.example>\nTo: bob@test.example\nSubject: hi\n");
  CHECK(headers.body_section.empty());
  Outcome whole = run(engine("FailureReports yes\nFailureReportContent message\n"), m);
  CHECK(whole.header_section == headers.header_section);
  CHECK(whole.body_section == "Hello\r\n");
  // Bounded: a large body is cut at the limit.
  m.body = std::string(Session::kMaxKeptBodyBytes + 100, 'x');
  Outcome big = run(engine("FailureReports yes\nFailureReportContent message\n"), m);
  CHECK(big.body_section.size() == Session::kMaxKeptBodyBytes);
  // Own domains with a Maildir keep the headers too.
  Outcome own = run(engine("OwnDomains reject.example\nForensicMaildir /tmp/x\n"), m);
  CHECK_FALSE(own.header_section.empty());
  CHECK(own.body_section.empty());
}

TEST_CASE("session: a List-Id field is noted in the facts", "[session]") {
  Msg m;
  CHECK_FALSE(run(engine(), m).facts.list_id);
  m.headers.push_back({"List-Id", " Talk <talk.lists.example.org>"});
  CHECK(run(engine(), m).facts.list_id);
}
