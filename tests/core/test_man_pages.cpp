// test_man_pages.cpp - the man pages follow the code (issue 15)
//
// Every command-line flag a program's getopt tables accept (the short
// option string and the long options) is named in that program's man page;
// the settings table and dmarc-milter.conf(5) name the same keys, both
// ways; every metric the milter exposes is in dmarc-milter(8), METRICS.
// The lint of the pages (mandoc -Tlint) is the man_lint ctest.
#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "dmarc/config/config.hpp"
#include "support/doc_check.hpp"

namespace {

const std::string kSource = DMARC_TEST_DATA_DIR "/../..";

using dmarc::test::slurp;

// The page as its reader sees the words: "\-" is "-", font escapes gone.
std::string page_text(const std::string& path) {
  std::string t = slurp(path);
  t = std::regex_replace(t, std::regex(R"(\\-)"), "-");
  t = std::regex_replace(t, std::regex(R"(\\f[BIRP])"), "");
  return t;
}

struct Flags {
  std::set<std::string> shorts, longs;
};

// flags_of - what getopt_long is given in SOURCE: every option string and
// every "struct option" entry.
Flags flags_of(const std::string& source) {
  Flags f;
  std::string src = slurp(source);
  std::regex optstring(R"re(getopt_long\(argc, argv, "([^"]*)")re");
  for (auto it = std::sregex_iterator(src.begin(), src.end(), optstring); it != std::sregex_iterator(); ++it) {
    for (char c : (*it)[1].str())
      if (c != ':') f.shorts.insert(std::string("-") + c);
  }
  std::regex longopt(R"re(\{"([a-z][a-z-]*)", (no|required|optional)_argument)re");
  for (auto it = std::sregex_iterator(src.begin(), src.end(), longopt); it != std::sregex_iterator(); ++it)
    f.longs.insert("--" + (*it)[1].str());
  return f;
}

bool names(const std::string& page, const std::string& flag) {
  // The flag as a word of its own: not a part of a longer flag or word.
  std::regex word("(^|[^A-Za-z0-9-])" + flag + "([^A-Za-z0-9-]|$)");
  return std::regex_search(page, word);
}

}  // namespace

TEST_CASE("man pages: every command-line flag of a program is in its page", "[docs][man]") {
  struct Program {
    const char* source;
    const char* page;
  };
  for (Program p : {Program{"/src/milter/main.cpp", "/man/dmarc-milter.8"},
                    Program{"/src/tools/dmarc_report.cpp", "/man/dmarc-report.8"},
                    Program{"/src/tools/dmarc_check.cpp", "/man/dmarc-check.1"}}) {
    INFO(p.source << " vs " << p.page);
    Flags f = flags_of(kSource + p.source);
    CHECK(f.shorts.size() >= 1);  // the extraction found the tables
    CHECK(f.longs.size() >= 2);
    std::string page = page_text(kSource + p.page);
    for (const auto& s : f.shorts) {
      INFO(s);
      CHECK(names(page, s));
    }
    for (const auto& l : f.longs) {
      INFO(l);
      CHECK(names(page, l));
    }
  }
}

TEST_CASE("man pages: dmarc-milter.conf(5) names exactly the keys of the settings table", "[docs][man]") {
  std::string page = slurp(kSource + "/man/dmarc-milter.conf.5");
  std::set<std::string> table;
  for (const auto& s : dmarc::settings_table()) table.insert(std::string(s.key));
  // Every item of the page's setting lists: ".TP" then ".BI Key ...".
  std::set<std::string> documented;
  std::regex item(R"(\n\.TP\n\.BI? ([A-Z][A-Za-z0-9]*)\b)");
  for (auto it = std::sregex_iterator(page.begin(), page.end(), item); it != std::sregex_iterator(); ++it)
    documented.insert((*it)[1].str());
  dmarc::test::check_same_names(table, documented, "dmarc-milter.conf(5)");
}
