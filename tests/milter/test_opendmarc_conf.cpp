// test_opendmarc_conf.cpp - the way over from OpenDMARC (issue 15)
//
// Reads the real Debian opendmarc package, unpacked by
// packaging/install-deps.sh --test (DMARC_TEST_UNPACKED, default
// /var/cache/dmarc-milter-tests): its /etc/opendmarc.conf and the sample
// that lists every key OpenDMARC 1.4.2 has.
#include <sys/wait.h>

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "dmarc/config/config.hpp"
#include "support/doc_check.hpp"

namespace {

std::string unpacked() {
  const char* e = std::getenv("DMARC_TEST_UNPACKED");
  return std::string(e && *e ? e : "/var/cache/dmarc-milter-tests") + "/root";
}

using dmarc::test::slurp;  // the unpacked files: packaging/install-deps.sh --test

struct Run {
  int status = -1;
  std::string out, err;
};

Run run_check(const std::string& conf) {
  const std::string err_file = std::string(DMARC_BINARY_DIR) + "/opendmarc-check.err";
  std::string cmd = std::string(DMARC_BINARY_DIR) + "/dmarc-milter -n -c '" + conf + "' 2>'" + err_file + "'";
  Run r;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p);
  char buf[4096];
  for (std::size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.err = slurp(err_file);
  return r;
}

// The keys of opendmarc.conf.sample: its "# Key value" example lines.
std::vector<std::pair<std::string, std::string>> sample_keys() {
  std::string cmd = "zcat '" + unpacked() + "/usr/share/doc/opendmarc/opendmarc.conf.sample.gz'";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p);
  std::string text;
  char buf[4096];
  for (std::size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) text.append(buf, n);
  REQUIRE(pclose(p) == 0);
  std::vector<std::pair<std::string, std::string>> keys;
  std::regex line(R"(\n# ([A-Z][A-Za-z]+) ([^\n]*))");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), line); it != std::sregex_iterator(); ++it)
    keys.emplace_back((*it)[1].str(), (*it)[2].str());
  return keys;
}

}  // namespace

TEST_CASE("opendmarc: dmarc-milter -n on Debian's /etc/opendmarc.conf says what it kept", "[opendmarc]") {
  Run r = run_check(unpacked() + "/etc/opendmarc.conf");
  INFO(r.out << r.err);
  CHECK(r.status == 0);
  CHECK(r.err.find("unknown key") == std::string::npos);
  // Debian's file sets these six; each is kept with its line and value.
  for (const char* kept : {"PidFile /run/opendmarc/opendmarc.pid", "Socket local:/run/opendmarc/opendmarc.sock",
                           "UserID opendmarc", "UMask 0002", "Syslog yes", "PublicSuffixList /usr/share/publicsuffix"}) {
    INFO(kept);
    CHECK(std::regex_search(r.out, std::regex(std::string("\n#   line [0-9]+: ") + kept)));
  }
  CHECK(r.out.find("# kept from " + unpacked() + "/etc/opendmarc.conf: 6 setting(s)\n") != std::string::npos);
  // The effective configuration is a configuration again.
  auto again = dmarc::parse_config(r.out, "effective");
  REQUIRE(again);
  CHECK(again->socket == "local:/run/opendmarc/opendmarc.sock");
}

TEST_CASE("opendmarc: every key of opendmarc.conf is read, or warned about by name with its line", "[opendmarc]") {
  auto keys = sample_keys();
  REQUIRE(keys.size() >= 40);
  for (const auto& [key, example] : keys) {
    INFO(key << " " << example);
    if (dmarc::find_setting(key)) continue;  // the same key, read as it is
    auto c = dmarc::parse_config("\n" + key + " " + (key == "RejectString" ? example : "true") + "\n", "o.conf");
    REQUIRE(c);
    REQUIRE(c->warnings.size() == 1);
    CHECK(c->warnings[0].line == 2);
    CHECK(c->warnings[0].message.find("unknown key") == std::string::npos);
    CHECK(c->warnings[0].message.find(key) != std::string::npos);
  }
  // The two read under another name.
  auto rs = dmarc::parse_config("RejectString rejected by DMARC policy for %s\n", "o.conf");
  REQUIRE(rs);
  CHECK(rs->enforcement.reject_text == "rejected by DMARC policy for {domain}");
  auto hq = dmarc::parse_config("HoldQuarantinedMessages true\n", "o.conf");
  REQUIRE(hq);
  CHECK(hq->set_at.count("QuarantineAction") == 1);
}

TEST_CASE("opendmarc: README's table has a row for every opendmarc.conf key", "[opendmarc][docs]") {
  std::string readme = slurp(std::string(DMARC_TEST_DATA_DIR) + "/../../README.md");
  for (const auto& [key, example] : sample_keys()) {
    INFO(key);
    CHECK(readme.find("\n| `" + key + "` |") != std::string::npos);
  }
}
