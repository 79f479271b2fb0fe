// test_readiness_out.cpp - the readiness report's text and JSON
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "dmarc/report/readiness_out.hpp"
#include "support/temp_dir.hpp"

using namespace dmarc;

namespace {

Readiness sample() {
  std::vector<AggregateRecord> rows;
  for (std::int64_t d = 20790; d < 20797; ++d) {
    AggregateRecord ok;
    ok.day = d;
    ok.last_seen = d * kSecondsPerDay;
    ok.policy.domain = "example.com";
    ok.source_ip = "192.0.2.10";
    ok.result = DmarcResult::Pass;
    ok.count = 100;
    rows.push_back(ok);
    AggregateRecord crm = ok;
    crm.source_ip = "198.51.100.7";
    crm.result = DmarcResult::Fail;
    crm.count = 2;
    crm.spf = SpfAuthResult{"crm.example", SpfScope::MailFrom, AuthResult::Pass};
    rows.push_back(crm);
  }
  auto sources = summarize_sources("example.com", rows);
  for (auto& s : sources) {
    if (s.ip == "198.51.100.7") {
      s.ptr = "mta.crm.example\xff";  // hostile DNS text
      s.domain_spf_authorises = true;
    }
  }
  return assess("example.com", ReportPeriod{20790 * kSecondsPerDay, 20797 * kSecondsPerDay - 1}, rows, sources,
                Thresholds{});
}

}  // namespace

TEST_CASE("readiness output: JSON with the stable keys", "[readiness]") {
  Readiness r = sample();
  auto j = nlohmann::json::parse(readiness_json(r));
  CHECK(j["domain"] == "example.com");
  CHECK(j["begin"] == 20790 * kSecondsPerDay);
  CHECK(j["days"] == 7);
  CHECK(j["messages"] == 714);
  CHECK(j["aligned_pass"] == 700);
  REQUIRE(j["sources"].size() == 2);
  CHECK(j["sources"][0]["ip"] == "192.0.2.10");
  CHECK(j["sources"][0]["class"] == "aligned");
  CHECK(j["sources"][1]["class"] == "authorised_misaligned");
  CHECK(j["sources"][1]["messages"] == 14);
  CHECK(j["sources"][1]["aligned_pass"] == 0);
  CHECK(j["sources"][1]["spf_domains"] == nlohmann::json::array({"crm.example"}));
  CHECK(j["sources"][1]["dkim_domains"].empty());
  CHECK(j["projection"]["reject"]["affected"] == 14);
  CHECK(j["projection"]["reject"]["legitimate"] == 14);
  CHECK(j["projection"]["quarantine"]["legitimate"] == 14);
  CHECK(j["recommendation"] == "stay at none");
  CHECK_THAT(j["sources"][1]["fix"].get<std::string>(), Catch::Contains("have it sign with d=example.com"));
}

TEST_CASE("readiness output: the text an admin reads", "[readiness]") {
  std::string t = readiness_text(sample());
  CHECK_THAT(t, Catch::StartsWith("Readiness of example.com, 2026-12-03 to 2026-12-09 (7 day(s) with data)\n"));
  CHECK_THAT(t, Catch::Contains("Messages:        714, aligned pass 700 (98.0%)"));
  CHECK_THAT(t, Catch::Contains("Under p=reject:     14 message(s) rejected, 14 of them from sources that look "
                                "legitimate (2.0% of legitimate mail)"));
  CHECK_THAT(t, Catch::Contains("Recommendation: stay at none"));
  CHECK_THAT(t, Catch::Contains("Fix first:\n  - 198.51.100.7"));
  // DNS text is shown printable.
  CHECK(t.find('\xff') == std::string::npos);
  CHECK_THAT(t, Catch::Contains("mta.crm.example?"));
}

namespace {
int run_cmd(const std::string& cmd, std::string* out) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  REQUIRE(p);
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
}  // namespace

TEST_CASE("readiness output: one self-contained HTML page, rendered by headless Chromium", "[readiness][html]") {
  std::string page = readiness_html(sample());
  REQUIRE_FALSE(page.empty());
  CHECK_THAT(page, Catch::StartsWith("<!DOCTYPE html>"));
  CHECK_THAT(page, Catch::Contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
  CHECK_THAT(page, Catch::Contains("<polyline points=\""));
  CHECK_THAT(page, Catch::Contains("Recommendation: stay at none"));
  // Self-contained: nothing is fetched.
  CHECK(page.find("src=") == std::string::npos);
  CHECK(page.find("href=") == std::string::npos);
  CHECK(page.find("<script") == std::string::npos);
  // Seven days, seven points.
  std::size_t circles = 0;
  for (std::size_t at = 0; (at = page.find("<circle", at)) != std::string::npos; ++at) ++circles;
  CHECK(circles == 7);
  // Hostile DNS text stays text.
  CHECK(page.find('\xff') == std::string::npos);

  test::TempDir dir;
  std::string html = dir.file("readiness.html"), png = dir.file("readiness.png");
  std::ofstream(html) << page;
  std::string out;
  // Well-formed XHTML (xmllint reads it as XML).
  CHECK(run_cmd("xmllint --noout " + html, &out) == 0);
  INFO(out);
  if (::access("/usr/bin/chromium", X_OK) != 0) {
    FAIL("chromium is not installed (packaging/install-deps.sh --test installs it)");
  }
  out.clear();
  int rc = run_cmd("timeout 120 /usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage "
                   "--no-first-run --user-data-dir=" + dir.file("profile") + " --window-size=900,1100 --screenshot=" +
                       png + " file://" + html,
                   &out);
  INFO(out);
  CHECK(rc == 0);
  std::string bytes = test::slurp(png);
  REQUIRE(bytes.size() > 1000);
  CHECK(bytes.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
}
