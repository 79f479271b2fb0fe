// test_metrics.cpp - the counters and their exposition (src/milter/metrics.*)
//
// The HTTP side and the counts of real messages are in
// tests/e2e/test_milter_protocol.cpp ([metrics]).
#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "metrics.hpp"
#include "session.hpp"
#include "support/doc_check.hpp"

using dmarc::milter::Histogram;
using dmarc::milter::metrics;

using dmarc::test::slurp;

TEST_CASE("metrics: histogram buckets are upper-inclusive and cumulative", "[metrics]") {
  Histogram h;
  h.observe(0.0005);  // on the first bound: in it (le = "less or equal")
  h.observe(0.0006);
  h.observe(3);
  h.observe(100);     // past the last bound: +Inf only
  h.observe(-1);      // a clock step: counted as 0
  auto c = h.cumulative();
  CHECK(c[0] == 2);   // -1 and 0.0005
  CHECK(c[1] == 3);   // + 0.0006
  constexpr std::size_t le2_5 = Histogram::kBounds.size() - 3, le5 = le2_5 + 1, le10 = le5 + 1;
  REQUIRE(Histogram::kBounds[le2_5] == 2.5);
  CHECK(c[le2_5] == 3);  // 3 s is past 2.5
  CHECK(c[le5] == 4);    // and within 5
  CHECK(c[le10] == 4);   // 100 s is past the last bound
  CHECK(c.back() == 5);
  CHECK(h.count() == 5);
  CHECK(h.sum() == Approx(103.0011).epsilon(1e-6));
}

TEST_CASE("metrics: an outcome is counted by result, disposition and action", "[metrics]") {
  dmarc::milter::Metrics m;
  dmarc::milter::Outcome o;
  o.checked = true;
  dmarc::Verdict pass, fail;
  pass.result = dmarc::DmarcResult::Pass;
  fail.result = dmarc::DmarcResult::Fail;
  fail.disposition = dmarc::Disposition::Quarantine;
  o.verdicts = {pass, fail};
  o.decision.action = dmarc::Action::Quarantine;
  o.decision.hold = true;
  dmarc::SpfCheckResult spf;
  spf.result = dmarc::AuthResult::SoftFail;
  o.spf = spf;
  o.dkim.resize(3);
  o.dkim[0].result = dmarc::AuthResult::Pass;
  o.dkim[1].result = dmarc::AuthResult::Fail;
  o.dkim[2].result = dmarc::AuthResult::Pass;
  o.deletions.push_back({"Authentication-Results", 1});
  m.count_outcome(o, 0.002);
  CHECK(m.messages == 1);
  CHECK(m.messages_unchecked == 0);
  CHECK(m.dmarc_results[static_cast<int>(dmarc::DmarcResult::Pass)] == 1);
  CHECK(m.dmarc_results[static_cast<int>(dmarc::DmarcResult::Fail)] == 1);
  CHECK(m.dispositions[static_cast<int>(dmarc::Disposition::None)] == 1);
  CHECK(m.dispositions[static_cast<int>(dmarc::Disposition::Quarantine)] == 1);
  CHECK(m.actions[static_cast<int>(dmarc::Action::Quarantine)] == 1);
  CHECK(m.held == 1);
  CHECK(m.spf_results[static_cast<int>(dmarc::AuthResult::SoftFail)] == 1);
  CHECK(m.dkim_results[static_cast<int>(dmarc::AuthResult::Pass)] == 2);
  CHECK(m.dkim_results[static_cast<int>(dmarc::AuthResult::Fail)] == 1);
  CHECK(m.forged_ar_removed == 0);  // counted by the glue per field it did remove
  CHECK(m.message_seconds.count() == 1);

  dmarc::milter::Outcome skipped;
  skipped.checked = false;
  m.count_outcome(skipped, 0);
  CHECK(m.messages == 2);
  CHECK(m.messages_unchecked == 1);
  CHECK(m.actions[static_cast<int>(dmarc::Action::Accept)] == 1);
  CHECK(m.dmarc_results[static_cast<int>(dmarc::DmarcResult::Pass)] == 1);  // not evaluated, not counted
}

TEST_CASE("metrics: every family exposed is in dmarc-milter(8), METRICS, and no other", "[metrics][docs]") {
  std::string text = dmarc::milter::render_metrics({});
  std::set<std::string> exposed;
  std::regex type_line(R"(# TYPE ([a-z_]+) (counter|gauge|histogram)\n)");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), type_line); it != std::sregex_iterator(); ++it)
    exposed.insert((*it)[1].str());
  CHECK(exposed.size() >= 20);
  std::string page = slurp(std::string(DMARC_TEST_DATA_DIR) + "/../../man/dmarc-milter.8");
  std::string section = page.substr(page.find(".SH METRICS"));
  section = section.substr(0, section.find("\n.SH ", 1));
  std::set<std::string> documented;
  std::regex name(R"(dmarc_milter_[a-z_]+[a-z])");
  for (auto it = std::sregex_iterator(section.begin(), section.end(), name); it != std::sregex_iterator(); ++it)
    documented.insert((*it)[0].str());
  dmarc::test::check_same_names(exposed, documented, "dmarc-milter(8) METRICS");
}

TEST_CASE("metrics: conf/grafana-dashboard.json is JSON and shows only metrics that exist", "[metrics][docs]") {
  std::string text = dmarc::milter::render_metrics({});
  auto dash = nlohmann::json::parse(slurp(std::string(DMARC_TEST_DATA_DIR) + "/../../conf/grafana-dashboard.json"));
  REQUIRE(dash.at("panels").is_array());
  std::size_t exprs = 0;
  std::set<std::string> shown;
  for (const auto& p : dash.at("panels")) {
    for (const auto& t : p.at("targets")) {
      std::string e = t.at("expr").get<std::string>();
      ++exprs;
      std::regex name(R"(dmarc_milter_[a-z_]+)");
      for (auto it = std::sregex_iterator(e.begin(), e.end(), name); it != std::sregex_iterator(); ++it) {
        std::string n = (*it)[0].str();
        INFO(p.at("title") << ": " << n);
        // A sample of that name is exposed (histograms as _bucket/_sum/_count).
        CHECK(text.find("\n" + n + " ") + text.find("\n" + n + "{") != 2 * std::string::npos);
        shown.insert(n);
      }
    }
  }
  CHECK(exprs >= 10);
  // The families an admin alerts on are on the dashboard.
  for (const char* must : {"dmarc_milter_actions_total", "dmarc_milter_dmarc_results_total",
                           "dmarc_milter_store_records_dropped_total", "dmarc_milter_dns_timeouts_total",
                           "dmarc_milter_message_seconds_bucket"})
    CHECK(shown.count(must) == 1);
}
