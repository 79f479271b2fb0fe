// test_report_model.cpp - the aggregate report model (dmarc/core/report.hpp):
// records from real decide() verdicts, the aggregation key, the field
// codec, token codecs, merging, periods, names, destinations and their
// authorisation (DNS from a StaticResolver), address lists.
#include <catch2/catch.hpp>

#include <limits>
#include <random>
#include <set>

#include "dmarc/core/decide.hpp"
#include "dmarc/core/report.hpp"
#include "support/static_resolver.hpp"

using namespace dmarc;
using dmarc::test::StaticResolver;

namespace {

constexpr std::int64_t kNow = 1796601600 + 3600;  // 2026-12-07 01:00 UTC

MessageFacts facts(const std::string& from, AuthResult spf, const std::string& spf_domain) {
  MessageFacts f;
  f.client_ip = "203.0.113.9";
  f.helo = "mx.sender.example";
  f.mail_from = "Bounce@" + spf_domain;
  f.rcpt_to = {"bob@RCPT.example", "carol@other.example"};
  f.from_fields = {" " + from};
  f.header_counts[0] = 1;
  f.header_counts[1] = 1;
  SpfFacts s;
  s.result = spf;
  s.domain = spf_domain;
  s.identity = f.mail_from;
  f.spf = s;
  return f;
}

}  // namespace

TEST_CASE("report model: UTC days and their text", "[report]") {
  CHECK(utc_day(0) == 0);
  CHECK(utc_day(86399) == 0);
  CHECK(utc_day(86400) == 1);
  CHECK(utc_day(-1) == -1);
  CHECK(format_day(utc_day(kNow)) == "2026-12-07");
  CHECK(parse_day("2026-12-07") == utc_day(kNow));
  CHECK(parse_day("1970-01-01") == 0);
  for (const char* bad : {"", "2026-13-01", "2026-02-30", "26-12-07", "2026-12-07x", "2026/12/07"}) {
    INFO(bad);
    CHECK_FALSE(parse_day(bad));
  }
  ReportPeriod d = day_period(20000);
  CHECK(d.begin == 20000 * kSecondsPerDay);
  CHECK(d.end == d.begin + 86399);
  CHECK(d.first_day() == 20000);
  CHECK(d.last_day() == 20000);
  ReportPeriod odd{d.begin + 10, d.end + 86400};  // starts mid-day: the next day is the first whole one
  CHECK(odd.first_day() == 20001);
  CHECK(odd.last_day() == 20001);
}

TEST_CASE("report model: aggregate_records from decide() verdicts", "[report]") {
  StaticResolver dns;
  dns.add_txt("_dmarc.example.com",
              "v=DMARC1; p=reject; sp=quarantine; adkim=s; pct=100; fo=1; rua=mailto:a@example.com,mailto:b@example.net!10m");
  dns.add_txt("_dmarc.other.example", "v=DMARC1; p=none");
  DecideOptions o;
  o.authserv_id = "mx.test.example";

  MessageFacts f = facts("a@mail.example.com", AuthResult::Pass, "example.com");
  DkimFacts k1;
  k1.result = AuthResult::Pass;
  k1.domain = "example.com";
  k1.selector = "s1";
  DkimFacts k2;
  k2.result = AuthResult::Fail;
  k2.domain = "third.example";
  k2.selector = "x";
  f.dkim = {k1, k2};
  MessageVerdict v = decide(dns, f, o);
  auto recs = aggregate_records(f, v, kNow);
  REQUIRE(recs.size() == 1);
  const AggregateRecord& r = recs[0];
  CHECK(r.day == utc_day(kNow));
  CHECK(r.last_seen == kNow);
  CHECK(r.count == 1);
  CHECK(r.policy.domain == "example.com");  // where the record was found
  CHECK(r.header_from == "mail.example.com");
  CHECK(r.policy.p == Policy::Reject);
  CHECK(r.policy.sp == Policy::Quarantine);
  CHECK_FALSE(r.policy.np);
  CHECK(r.policy.adkim == AlignmentMode::Strict);
  CHECK(r.policy.fo == "1");
  CHECK(r.policy.rua == std::vector<std::string>{"mailto:a@example.com", "mailto:b@example.net!10m"});
  CHECK(r.source_ip == "203.0.113.9");
  CHECK(r.envelope_from == "example.com");  // lower case, the domain only
  CHECK(r.envelope_to == "rcpt.example");   // the first recipient's domain
  CHECK(r.result == DmarcResult::Pass);     // relaxed SPF alignment passes
  CHECK(r.spf_alignment == Alignment::Pass);
  CHECK(r.dkim_alignment == Alignment::Fail);  // adkim=s: example.com is not mail.example.com
  REQUIRE(r.dkim.size() == 2);                 // every signature, in header order
  CHECK(r.dkim[0] == DkimAuthResult{"example.com", "s1", AuthResult::Pass});
  CHECK(r.dkim[1] == DkimAuthResult{"third.example", "x", AuthResult::Fail});
  REQUIRE(r.spf);
  CHECK(r.spf->domain == "example.com");
  CHECK(r.spf->scope == SpfScope::MailFrom);
  CHECK(r.action == Action::Accept);
  CHECK(r.disposition == Disposition::None);

  // A spoof: rejected, and the action says so.
  MessageFacts spoof = facts("a@example.com", AuthResult::Fail, "evil.example");
  MessageVerdict sv = decide(dns, spoof, o);
  auto srecs = aggregate_records(spoof, sv, kNow);
  REQUIRE(srecs.size() == 1);
  CHECK(srecs[0].result == DmarcResult::Fail);
  CHECK(srecs[0].requested == Disposition::Reject);
  CHECK(srecs[0].disposition == Disposition::Reject);
  CHECK(srecs[0].action == Action::Reject);
  CHECK(srecs[0].envelope_from == "evil.example");

  // Two author domains with policies: two records; one without: none.
  MessageFacts two = facts("a@example.com, b@other.example, c@nopolicy.example", AuthResult::Fail, "evil.example");
  o.enforcement.max_from_domains = 5;
  MessageVerdict tv = decide(dns, two, o);
  auto trecs = aggregate_records(two, tv, kNow);
  std::set<std::string> doms;
  for (const auto& x : trecs) doms.insert(x.policy.domain);
  CHECK(doms == std::set<std::string>{"example.com", "other.example"});

  // The null sender, no recipients: empty envelope fields.
  MessageFacts bounce = facts("a@example.com", AuthResult::None, "mx.sender.example");
  bounce.mail_from = "";
  bounce.rcpt_to.clear();
  auto brecs = aggregate_records(bounce, decide(dns, bounce, o), kNow);
  REQUIRE(brecs.size() == 1);
  CHECK(brecs[0].envelope_from.empty());
  CHECK(brecs[0].envelope_to.empty());

  // Not checked (an ignored host): nothing to record.
  IpNetList ignore;
  ignore.add(*parse_ip_net("203.0.113.0/24"));
  o.ignore_hosts = &ignore;
  MessageVerdict iv = decide(dns, f, o);
  CHECK_FALSE(iv.checked);
  CHECK(aggregate_records(f, iv, kNow).empty());
}

TEST_CASE("report model: at most 100 DKIM results per record", "[report]") {
  StaticResolver dns;
  dns.add_txt("_dmarc.example.com", "v=DMARC1; p=none");
  MessageFacts f = facts("a@example.com", AuthResult::Pass, "example.com");
  for (int i = 0; i < 150; ++i) {
    DkimFacts k;
    k.result = AuthResult::Fail;
    k.domain = "d" + std::to_string(i) + ".example";
    k.selector = "s";
    f.dkim.push_back(k);
  }
  DecideOptions o;
  auto recs = aggregate_records(f, decide(dns, f, o), kNow);
  REQUIRE(recs.size() == 1);
  CHECK(recs[0].dkim.size() <= kMaxReportedDkim);
  CHECK(recs[0].dkim.front().domain == "d0.example");
}

TEST_CASE("report model: record_key tells every key field apart and ignores count and day", "[report]") {
  AggregateRecord base;
  base.policy.domain = "example.com";
  base.source_ip = "192.0.2.1";
  base.header_from = "example.com";
  base.dkim = {DkimAuthResult{"example.com", "s", AuthResult::Pass}};
  base.spf = SpfAuthResult{"example.com", SpfScope::MailFrom, AuthResult::Pass};
  const std::string k = record_key(base);
  AggregateRecord same = base;
  same.count = 99;
  same.last_seen = 12345;
  same.day = 7;
  CHECK(record_key(same) == k);
  std::vector<std::function<void(AggregateRecord&)>> changes = {
      [](AggregateRecord& r) { r.policy.p = Policy::Reject; },
      [](AggregateRecord& r) { r.policy.sp = Policy::None; },
      [](AggregateRecord& r) { r.policy.np = Policy::None; },
      [](AggregateRecord& r) { r.policy.adkim = AlignmentMode::Strict; },
      [](AggregateRecord& r) { r.policy.aspf = AlignmentMode::Strict; },
      [](AggregateRecord& r) { r.policy.pct = 50; },
      [](AggregateRecord& r) { r.policy.fo = "1"; },
      [](AggregateRecord& r) { r.policy.t = true; },
      [](AggregateRecord& r) { r.policy.psd = PsdFlag::Yes; },
      [](AggregateRecord& r) { r.policy.discovery = DiscoveryMethod::Psl; },
      [](AggregateRecord& r) { r.policy.rua = {"mailto:x@example.com"}; },
      [](AggregateRecord& r) { r.source_ip = "192.0.2.2"; },
      [](AggregateRecord& r) { r.header_from = "sub.example.com"; },
      [](AggregateRecord& r) { r.envelope_from = "example.com"; },
      [](AggregateRecord& r) { r.envelope_to = "example.net"; },
      [](AggregateRecord& r) { r.result = DmarcResult::Fail; },
      [](AggregateRecord& r) { r.requested = Disposition::Reject; },
      [](AggregateRecord& r) { r.disposition = Disposition::Quarantine; },
      [](AggregateRecord& r) { r.dkim_alignment = Alignment::Pass; },
      [](AggregateRecord& r) { r.spf_alignment = Alignment::Fail; },
      [](AggregateRecord& r) { r.overrides = {PolicyOverride{OverrideReason::LocalPolicy, ""}}; },
      [](AggregateRecord& r) { r.dkim.push_back(DkimAuthResult{"x.example", "s", AuthResult::Fail}); },
      [](AggregateRecord& r) { r.dkim[0].selector = "t"; },
      [](AggregateRecord& r) { r.dkim.clear(); },
      [](AggregateRecord& r) { r.spf.reset(); },
      [](AggregateRecord& r) { r.spf->scope = SpfScope::Helo; },
      [](AggregateRecord& r) { r.action = Action::Quarantine; },
  };
  std::set<std::string> keys = {k};
  for (std::size_t i = 0; i < changes.size(); ++i) {
    AggregateRecord c = base;
    changes[i](c);
    INFO("change " << i);
    CHECK(keys.insert(record_key(c)).second);
  }
  // Field boundaries cannot be forged with separators in untrusted text.
  AggregateRecord a = base, b = base;
  a.header_from = "x\ty";
  b.header_from = "x";
  b.envelope_from = "y";
  CHECK(record_key(a) != record_key(b));
  a = base;
  b = base;
  a.dkim = {DkimAuthResult{"a\nb", "s", AuthResult::Pass}};
  b.dkim = {DkimAuthResult{"a", "s", AuthResult::Pass}, DkimAuthResult{"b", "s", AuthResult::Pass}};
  CHECK(record_key(a) != record_key(b));
}

TEST_CASE("report model: encode_fields / decode_fields round-trip anything", "[report]") {
  std::vector<std::vector<std::vector<std::string>>> cases = {
      {},
      {{}},
      {{""}},
      {{"", ""}},
      {{"a", "b"}, {"c"}},
      {{"\t", "\n", "\\", "\\0", "\\t"}},
      {{}, {"x"}, {}},
  };
  std::mt19937 rng(3);
  const std::string alphabet = "ab\t\n\\0t";
  for (int n = 0; n < 300; ++n) {
    std::vector<std::vector<std::string>> e(rng() % 4);
    for (auto& entry : e) {
      entry.resize(1 + rng() % 3);
      for (auto& field : entry) {
        std::size_t len = rng() % 5;
        for (std::size_t i = 0; i < len; ++i) field += alphabet[rng() % alphabet.size()];
      }
    }
    cases.push_back(e);
  }
  for (const auto& c : cases) {
    std::string text = encode_fields(c);
    INFO(text);
    CHECK(decode_fields(text) == c);
  }
}

TEST_CASE("report model: token codecs are inverse", "[report]") {
  for (auto r : {DmarcResult::None, DmarcResult::Pass, DmarcResult::Fail, DmarcResult::TempError, DmarcResult::PermError})
    CHECK(parse_dmarc_result(to_token(r)) == r);
  for (auto d : {Disposition::None, Disposition::Quarantine, Disposition::Reject})
    CHECK(parse_disposition(to_token(d)) == d);
  for (auto a : {Alignment::None, Alignment::Pass, Alignment::Fail}) CHECK(parse_alignment(to_token(a)) == a);
  for (auto a : {Action::Accept, Action::Quarantine, Action::Reject, Action::TempFail})
    CHECK(parse_action(to_token(a)) == a);
  for (auto m : {AlignmentMode::Relaxed, AlignmentMode::Strict}) CHECK(parse_alignment_mode(to_token(m)) == m);
  for (auto f : {PsdFlag::Yes, PsdFlag::No, PsdFlag::Unspecified}) CHECK(parse_psd_flag(to_token(f)) == f);
  for (auto m : {DiscoveryMethod::TreeWalk, DiscoveryMethod::Psl}) CHECK(parse_discovery(to_token(m)) == m);
  for (auto s : {SpfScope::MailFrom, SpfScope::Helo}) CHECK(parse_spf_scope(to_token(s)) == s);
  for (auto s : {ReportStatus::Pending, ReportStatus::Sending, ReportStatus::Sent, ReportStatus::Failed})
    CHECK(parse_report_status(to_token(s)) == s);
  for (auto r : {OverrideReason::Forwarded, OverrideReason::SampledOut, OverrideReason::TrustedForwarder,
                 OverrideReason::MailingList, OverrideReason::LocalPolicy, OverrideReason::Other,
                 OverrideReason::PolicyTestMode})
    CHECK(parse_override_reason(to_token(r)) == r);
  CHECK_FALSE(parse_action("explode"));
  CHECK_FALSE(parse_disposition(""));
  CHECK(to_token(ReportFormat::Rfc7489) == "rfc7489");
  CHECK(to_token(ReportFormat::Rfc9990) == "rfc9990");
}

TEST_CASE("report model: merge_records adds counts across days, saturating", "[report]") {
  AggregateRecord a;
  a.policy.domain = "example.com";
  a.source_ip = "192.0.2.1";
  a.day = 10;
  a.count = 5;
  a.last_seen = 100;
  AggregateRecord b = a;
  b.day = 11;
  b.count = 7;
  b.last_seen = 200;
  AggregateRecord c = a;
  c.source_ip = "192.0.2.0";
  auto m = merge_records({a, b, c});
  REQUIRE(m.size() == 2);
  CHECK(m[0].source_ip == "192.0.2.0");  // ordered by source address
  CHECK(m[1].count == 12);
  CHECK(m[1].last_seen == 200);
  CHECK(m[1].day == 10);
  b.count = std::numeric_limits<std::uint64_t>::max() - 1;
  m = merge_records({a, b});
  REQUIRE(m.size() == 1);
  CHECK(m[0].count == std::numeric_limits<std::uint64_t>::max());
}

TEST_CASE("report model: report id, file name and subject", "[report]") {
  ReportPeriod p = day_period(20429);
  std::string id = report_id("Example.COM", p);
  CHECK(id == report_id("example.com", p));  // stable, case-insensitive
  CHECK(id != report_id("example.net", p));
  CHECK(id != report_id("example.com", day_period(20430)));
  CHECK(id.find(' ') == std::string::npos);
  CHECK(report_file_name("mx.example.net", "example.com", p) ==
        "mx.example.net!example.com!" + std::to_string(p.begin) + "!" + std::to_string(p.end) + ".xml.gz");
  CHECK(report_file_name("mx.example.net", "example.com", p, "") ==
        "mx.example.net!example.com!" + std::to_string(p.begin) + "!" + std::to_string(p.end));
  // Hostile names cannot climb out of a directory or add separators.
  std::string evil = report_file_name("../../etc", "a/b!c", p);
  CHECK(evil.find('/') == std::string::npos);
  CHECK(std::count(evil.begin(), evil.end(), '!') == 3);
  CHECK(report_subject("example.com", "mx.example.net", id) ==
        "Report Domain: example.com Submitter: mx.example.net Report-ID: <" + id + ">");
}

TEST_CASE("report model: destinations from rua", "[report]") {
  std::vector<std::string> skipped;
  auto d = report_destinations({"mailto:dmarc@Example.com", "mailto:big@example.net!10m", "https://example.com/r",
                                "mailto:DMARC@example.com", "mailto:", "ftp://x"},
                               &skipped);
  REQUIRE(d.size() == 2);
  CHECK(d[0].address == "dmarc@Example.com");
  CHECK(d[0].host == "example.com");
  CHECK(d[0].max_size == 0);
  CHECK(d[1].host == "example.net");
  CHECK(d[1].max_size == 10ull * 1024 * 1024);
  CHECK(skipped.size() == 3);
}

TEST_CASE("report model: external destinations need the host's authorisation", "[report]") {
  CHECK_FALSE(needs_authorization("example.com", "example.com"));
  CHECK_FALSE(needs_authorization("example.com", "EXAMPLE.com"));
  CHECK(needs_authorization("example.com", "example.net"));
  CHECK(authorization_name("example.com", "reports.example.net") == "example.com._report._dmarc.reports.example.net");
  CHECK(is_authorization({"v=DMARC1"}));
  CHECK(is_authorization({"other", "v=DMARC1; rua=mailto:x@y.example"}));
  CHECK_FALSE(is_authorization({"v=DMARC10"}));
  CHECK_FALSE(is_authorization({"v=spf1 -all"}));
  CHECK_FALSE(is_authorization({}));

  StaticResolver dns;
  dns.add_txt("example.com._report._dmarc.ok.example", "v=DMARC1");
  dns.add_txt("example.com._report._dmarc.wrong.example", "v=spf1 -all");
  dns.fail("example.com._report._dmarc.flaky.example", DnsStatus::TempFail);
  std::string why;
  CHECK(check_authorization(dns, "example.com", "ok.example", &why) == AuthorizationStatus::Authorized);
  CHECK(check_authorization(dns, "example.com", "wrong.example", &why) == AuthorizationStatus::Unauthorized);
  CHECK_THAT(why, Catch::Contains("example.com._report._dmarc.wrong.example"));
  CHECK(check_authorization(dns, "example.com", "none.example", &why) == AuthorizationStatus::Unauthorized);
  CHECK(check_authorization(dns, "example.com", "flaky.example", &why) == AuthorizationStatus::TempFail);
  CHECK_THAT(why, Catch::Contains("temporary"));
}

TEST_CASE("report model: address lists hold addresses and domains", "[report]") {
  std::vector<std::string> list = {"rua@example.com", "reports.example.net", ".dot.example"};
  CHECK(in_address_list(list, "RUA@example.com"));
  CHECK_FALSE(in_address_list(list, "other@example.com"));
  CHECK(in_address_list(list, "x@reports.example.net"));
  CHECK(in_address_list(list, "x@deep.reports.example.net"));
  CHECK_FALSE(in_address_list(list, "x@notreports.example.net"));
  CHECK(in_address_list(list, "x@a.dot.example"));
  CHECK_FALSE(in_address_list({}, "x@example.com"));
}
