// test_config.cpp - configuration parser, settings table, shipped docs
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "dmarc/config/config.hpp"

using namespace dmarc;

namespace {
std::string slurp(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
const std::string kSource = DMARC_TEST_DATA_DIR "/../..";
}  // namespace

TEST_CASE("config: defaults come from the settings table", "[config]") {
  Config c = default_config();
  CHECK(c.nameservers.empty());
  CHECK(c.dns_timeout_s == 5);
  CHECK(c.dns_retries == 2);
  CHECK(c.mode == DmarcMode::Rfc9989);
  CHECK(c.public_suffix_list == "/usr/share/publicsuffix/public_suffix_list.dat");
  // Every default is valid for its own key.
  for (const auto& s : settings_table()) {
    auto r = parse_config(std::string(s.key) + " " + std::string(s.default_value) + "\n", "defaults");
    INFO(s.key);
    CHECK(r.has_value());
  }
}

TEST_CASE("config: keys, comments, case, last value wins", "[config]") {
  auto r = parse_config(
      "# comment\n"
      "   # an indented comment\n"
      "\n"
      "nameservers 127.0.0.1:5353, [::1]:53\n"
      "RejectText Ticket #1: rejected by {domain}\n"
      "DNSTIMEOUT 3\r\n"
      "DMARCMode RFC7489\n"
      "DNSRetries 1\n"
      "DNSRetries 4\n",
      "t.conf");
  REQUIRE(r);
  CHECK(r->nameservers == std::vector<std::string>{"127.0.0.1:5353", "[::1]:53"});
  // Only a line starting with '#' is a comment (conf/dmarc-milter.conf says so).
  CHECK(r->enforcement.reject_text == "Ticket #1: rejected by {domain}");
  CHECK(r->dns_timeout_s == 3);
  CHECK(r->mode == DmarcMode::Rfc7489);
  CHECK(r->dns_retries == 4);
  CHECK(r->warnings.empty());
}

TEST_CASE("config: errors name the file and line", "[config]") {
  auto r = parse_config("DNSTimeout 5\nDNSTimeout 0\n", "/etc/x.conf");
  REQUIRE_FALSE(r);
  CHECK(r.error().str() == "/etc/x.conf:2: DNSTimeout must be between 1 and 60, not 0");
  r = parse_config("\n\nDMARCMode bis\n", "a.conf");
  REQUIRE_FALSE(r);
  CHECK(r.error().line == 3);
  CHECK(r.error().str().find("rfc9989, rfc7489") != std::string::npos);
  r = parse_config("DNSRetries three\n", "a.conf");
  REQUIRE_FALSE(r);
  CHECK(r.error().str() == "a.conf:1: DNSRetries needs a whole number, not 'three'");
  r = parse_config("PublicSuffixList relative/path\n", "a.conf");
  REQUIRE_FALSE(r);
  r = parse_config(std::string("DNSRetries 2\0\n", 14), "a.conf");
  REQUIRE_FALSE(r);
  CHECK(r.error().line == 1);
  r = parse_config("DNSTimeout\n", "a.conf");
  REQUIRE_FALSE(r);
  CHECK(r.error().str() == "a.conf:1: DNSTimeout needs a value");
  auto missing = load_config("/nonexistent/dmarc-milter.conf");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().str().rfind("/nonexistent/dmarc-milter.conf: ", 0) == 0);
}

TEST_CASE("config: unknown keys (an opendmarc.conf) are warnings with file:line", "[config]") {
  auto r = parse_config("AuthservID mx.example.com\nHistoryFile /var/run/opendmarc.dat\nDNSRetries 3\nFrobnicate yes\n",
                        "opendmarc.conf");
  REQUIRE(r);
  REQUIRE(r->warnings.size() == 2);
  CHECK(r->authserv_id == "mx.example.com");
  CHECK(r->warnings[0].str().rfind("opendmarc.conf:2: OpenDMARC key 'HistoryFile' ignored: ", 0) == 0);
  CHECK(r->warnings[1].str() == "opendmarc.conf:4: unknown key 'Frobnicate' ignored");
  CHECK(r->dns_retries == 3);
}

TEST_CASE("config: -n output lists every key and round-trips", "[config]") {
  auto r = parse_config("Nameservers 192.0.2.53\nDMARCMode rfc7489\n", "t.conf");
  REQUIRE(r);
  std::string eff = format_effective(*r);
  for (const auto& s : settings_table()) CHECK(eff.find(std::string(s.key)) != std::string::npos);
  auto again = parse_config(eff, "effective");
  REQUIRE(again);
  CHECK(again->nameservers == r->nameservers);
  CHECK(again->mode == DmarcMode::Rfc7489);
}

TEST_CASE("config: conf/dmarc-milter.conf and the man page follow the settings table", "[config][docs]") {
  std::string conf = slurp(kSource + "/conf/dmarc-milter.conf");
  std::string man = slurp(kSource + "/man/dmarc-milter.conf.5");
  for (const auto& s : settings_table()) {
    INFO(s.key);
    CHECK(man.find(".BI " + std::string(s.key) + " ") != std::string::npos);
    CHECK(conf.find("\n" + std::string(s.key)) != std::string::npos);
  }
  // The shipped file parses and sets nothing but the defaults.
  auto shipped = parse_config(conf, "conf/dmarc-milter.conf");
  REQUIRE(shipped);
  CHECK(shipped->warnings.empty());
  CHECK(format_effective(*shipped).substr(format_effective(*shipped).find('\n') + 1) == format_effective(default_config()));
}

TEST_CASE("config: report keys are checked where they are read", "[config]") {
  auto ok = parse_config("ReportStore none\nReportFormat RFC9990\nReportSMTP [2001:db8::1]:587\n"
                         "IgnoreMailTo rua@Example.COM, reports.example.net\n",
                         "r.conf");
  REQUIRE(ok);
  CHECK(ok->report_store == "none");
  CHECK(ok->report_format == "rfc9990");
  CHECK(ok->ignore_mail_to == std::vector<std::string>{"rua@example.com", "reports.example.net"});
  CHECK(default_config().report_store == "sqlite:/var/lib/dmarc-milter/reports.db");
  CHECK(default_config().report_command == "/usr/sbin/sendmail -t -oi");
  struct Bad {
    const char* text;
    const char* key;
  };
  for (Bad b : {Bad{"ReportStore sqlite:relative.db\n", "ReportStore"}, Bad{"ReportStore mysql://x\n", "ReportStore"},
                Bad{"ReportSender not-an-address\n", "ReportSender"},
                Bad{"ReportContact a@b.example, c@d.example\n", "ReportContact"},
                Bad{"ReportSMTP smarthost.example\n", "ReportSMTP"}, Bad{"ReportSMTP host:99999\n", "ReportSMTP"},
                Bad{"ReportMaxAttempts 0\n", "ReportMaxAttempts"}}) {
    INFO(b.text);
    auto r = parse_config(std::string("\n") + b.text, "r.conf");
    REQUIRE_FALSE(r);
    CHECK(r.error().line == 2);
    CHECK_THAT(r.error().message, Catch::Contains(b.key));
  }
}

TEST_CASE("config: MetricsListen takes a literal IP and a port, nothing else", "[config]") {
  CHECK(default_config().metrics_listen.empty());  // off by default
  auto ok = parse_config("MetricsListen 127.0.0.1:9425\n", "m.conf");
  REQUIRE(ok);
  CHECK(ok->metrics_listen == "127.0.0.1:9425");
  auto v6 = parse_ip_port("[::1]:9425");
  REQUIRE(v6);
  CHECK(v6->ip == "::1");
  CHECK(v6->v6);
  CHECK(v6->port == 9425);
  for (const char* bad : {"localhost:9425", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "::1:9425", "[::1]9425",
                          "127.0.0.1:94x", "[127.0.0.1]:9425", ":9425"}) {
    INFO(bad);
    CHECK_FALSE(parse_ip_port(bad));
    auto r = parse_config(std::string("\nMetricsListen ") + bad + "\n", "m.conf");
    REQUIRE_FALSE(r);
    CHECK(r.error().line == 2);
    CHECK(r.error().file == "m.conf");
    CHECK_THAT(r.error().message, Catch::Contains("MetricsListen"));
  }
}

TEST_CASE("config: a list file that is not a regular file is an error, not a hang", "[config]") {
  // /dev/zero has no line end: getline would read it for ever (tests/fuzz/fuzz_config).
  for (const char* f : {"/dev/zero", "/dev/null", "/"}) {
    INFO(f);
    auto r = parse_config(std::string("\nIgnoreHosts ") + f + "\n", "l.conf");
    REQUIRE_FALSE(r);
    CHECK(r.error().line == 2);
    CHECK_THAT(r.error().message, Catch::Contains("is not a regular file"));
  }
}
