// test_readiness.cpp - sources, classes, projection and recommendation over
// a generated week of aggregate rows (fixed days, no clock)
#include <catch2/catch.hpp>

#include <map>

#include "dmarc/core/readiness.hpp"

using namespace dmarc;

namespace {

constexpr std::int64_t kFirstDay = 20790;

AggregateRecord row(std::int64_t day, const std::string& ip, std::uint64_t count, DmarcResult result,
                    std::optional<SpfAuthResult> spf, std::vector<DkimAuthResult> dkim = {}) {
  AggregateRecord r;
  r.day = day;
  r.last_seen = day * kSecondsPerDay + 100;
  r.policy.domain = "example.com";
  r.policy.p = Policy::None;
  r.source_ip = ip;
  r.header_from = "example.com";
  r.result = result;
  r.count = count;
  r.spf = std::move(spf);
  r.dkim = std::move(dkim);
  r.spf_alignment = result == DmarcResult::Pass ? Alignment::Pass : Alignment::Fail;
  r.dkim_alignment = Alignment::Fail;
  return r;
}

std::vector<AggregateRecord> week(bool with_crm_and_list) {
  std::vector<AggregateRecord> rows;
  for (std::int64_t d = kFirstDay; d < kFirstDay + 7; ++d) {
    rows.push_back(row(d, "192.0.2.10", 100, DmarcResult::Pass,
                       SpfAuthResult{"example.com", SpfScope::MailFrom, AuthResult::Pass}));
    rows.push_back(row(d, "203.0.113.66", 40, DmarcResult::Fail,
                       SpfAuthResult{"example.com", SpfScope::MailFrom, AuthResult::Fail}));
    if (!with_crm_and_list) continue;
    rows.push_back(row(d, "198.51.100.7", 5, DmarcResult::Fail,
                       SpfAuthResult{"crm.example", SpfScope::MailFrom, AuthResult::Pass}));
    AggregateRecord list = row(d, "203.0.113.5", 3, DmarcResult::Fail,
                               SpfAuthResult{"lists.example.org", SpfScope::MailFrom, AuthResult::Pass},
                               {DkimAuthResult{"example.com", "s1", AuthResult::Fail}});
    list.overrides = {PolicyOverride{OverrideReason::MailingList, "lists.example.org"}};
    rows.push_back(list);
  }
  return rows;
}

}  // namespace

TEST_CASE("readiness: a week with a misaligned CRM, a mailing list and a spoofer", "[readiness]") {
  auto rows = week(true);
  auto sources = summarize_sources("example.com", rows);
  REQUIRE(sources.size() == 4);
  CHECK(sources[0].ip == "192.0.2.10");  // most messages first
  for (auto& s : sources) {
    if (s.ip == "198.51.100.7") {
      s.ptr = "mta.crm.example";
      s.domain_spf_authorises = true;  // example.com's SPF includes the CRM
    }
  }
  Readiness r = assess("example.com", ReportPeriod{kFirstDay * kSecondsPerDay, (kFirstDay + 7) * kSecondsPerDay - 1},
                       rows, sources, Thresholds{});
  CHECK(r.days == 7);
  CHECK(r.current == Policy::None);
  CHECK(r.messages == 7 * (100 + 40 + 5 + 3));
  CHECK(r.aligned_pass == 700);
  std::map<std::string, SourceClass> cls;
  for (const auto& s : r.sources) cls[s.ip] = s.cls;
  CHECK(cls["192.0.2.10"] == SourceClass::Aligned);
  CHECK(cls["198.51.100.7"] == SourceClass::AuthorisedMisaligned);
  CHECK(cls["203.0.113.5"] == SourceClass::Forwarder);
  CHECK(cls["203.0.113.66"] == SourceClass::Unauthenticated);
  CHECK(r.reject.affected == 7 * (40 + 5 + 3));
  CHECK(r.reject.legitimate == 7 * (5 + 3));
  CHECK(r.quarantine.affected == r.reject.affected);
  CHECK(r.legitimate_messages == 7 * (100 + 5 + 3));
  CHECK(r.legitimate_at_risk == Approx(8.0 / 108.0));
  CHECK(r.recommendation == "stay at none");
  for (const auto& s : r.sources) {
    if (s.ip == "198.51.100.7") {
      CHECK(s.fix == "198.51.100.7 (mta.crm.example) sends as example.com with SPF pass for crm.example and no DKIM: "
                     "have it sign with d=example.com, or use a subdomain of example.com with its own SPF as its "
                     "envelope sender");
    }
    if (s.cls == SourceClass::Aligned || s.cls == SourceClass::Unauthenticated) CHECK(s.fix.empty());
  }
  // Without the domain's SPF vouching for it, the CRM is indistinguishable from a spoofer.
  auto plain = summarize_sources("example.com", rows);
  Readiness r2 = assess("example.com", r.period, rows, plain, Thresholds{});
  for (const auto& s : r2.sources) {
    if (s.ip == "198.51.100.7") CHECK(s.cls == SourceClass::Unauthenticated);
  }
}

TEST_CASE("readiness: clean mail recommends the next step; too little data recommends nothing", "[readiness]") {
  auto rows = week(false);
  Readiness r = assess("example.com", ReportPeriod{}, rows, summarize_sources("example.com", rows), Thresholds{});
  CHECK(r.reject.legitimate == 0);
  CHECK(r.reject.affected == 7 * 40);
  CHECK(r.recommendation == "go to quarantine");
  for (auto& x : rows) x.policy.p = Policy::Quarantine;
  CHECK(assess("example.com", ReportPeriod{}, rows, summarize_sources("example.com", rows), Thresholds{})
            .recommendation == "go to reject");
  for (auto& x : rows) x.policy.p = Policy::Reject;
  CHECK(assess("example.com", ReportPeriod{}, rows, summarize_sources("example.com", rows), Thresholds{})
            .recommendation == "stay at reject");
  std::vector<AggregateRecord> three(rows.begin(), rows.begin() + 6);  // 3 days
  CHECK(assess("example.com", ReportPeriod{}, three, summarize_sources("example.com", three), Thresholds{})
            .recommendation == "not enough data");
  CHECK(assess("example.com", ReportPeriod{}, {}, {}, Thresholds{}).recommendation == "not enough data");
  // The threshold is a setting.
  auto crm = week(true);
  auto s = summarize_sources("example.com", crm);
  for (auto& x : s) x.domain_spf_authorises = x.ip == "198.51.100.7";
  Thresholds loose;
  loose.max_legitimate_at_risk = 0.10;
  CHECK(assess("example.com", ReportPeriod{}, crm, s, loose).recommendation == "go to quarantine");
}

TEST_CASE("readiness: a source whose mail carries List-Id is a forwarder", "[readiness]") {
  AggregateRecord r = row(kFirstDay, "203.0.113.9", 10, DmarcResult::Fail,
                          SpfAuthResult{"lists.example.net", SpfScope::MailFrom, AuthResult::Pass});
  r.list_id = true;
  auto s = summarize_sources("example.com", {r});
  REQUIRE(s.size() == 1);
  classify("example.com", s[0]);
  CHECK(s[0].cls == SourceClass::Forwarder);
  r.list_id = false;
  auto t = summarize_sources("example.com", {r});
  classify("example.com", t[0]);
  CHECK(t[0].cls == SourceClass::Unauthenticated);
}
