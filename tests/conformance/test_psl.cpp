// test_psl.cpp - publicsuffix.org test vectors (conformance/psl/test_psl.txt)
//
// checkPublicSuffix(input, expected): expected is the registrable domain,
// the RFC 7489 3.2 Organizational Domain, or null. Our domains are A-labels,
// so Unicode inputs and outputs are compared after the same normalisation.
// Run against the PSL snapshot shipped with the vectors (SOURCE.md).
#include <regex>

#include "conformance/conformance_util.hpp"
#include "dmarc/adapters/psl_file.hpp"
#include "dmarc/core/domain.hpp"

using namespace dmarc;

TEST_CASE("conformance: psl test_psl.txt (78 cases)", "[conformance][psl]") {
  auto list = load_public_suffix_list(test::conformance_path("psl/public_suffix_list.dat"));
  REQUIRE(list);
  std::string text = test::read_text("psl/test_psl.txt");
  std::istringstream lines(text);
  std::regex call(R"(^checkPublicSuffix\((null|'[^']*'),\s*(null|'[^']*')\);)");
  test::Tally t{"psl/test_psl.txt"};
  std::string line;
  while (std::getline(lines, line)) {
    std::smatch m;
    if (!std::regex_search(line, m, call)) continue;
    ++t.total;
    auto unquote = [](const std::string& s) -> std::optional<std::string> {
      if (s == "null") return std::nullopt;
      return s.substr(1, s.size() - 2);
    };
    auto input = unquote(m[1]);
    auto expected = unquote(m[2]);
    std::optional<std::string> got;
    if (input) {
      if (auto d = normalize_domain(*input); d && input->front() != '.') got = list->registrable_domain(*d);
    }
    std::optional<std::string> want;
    if (expected) want = normalize_domain(*expected);
    INFO("checkPublicSuffix(" << m[1] << ", " << m[2] << ")");
    CHECK(got == want);
    if (got == want) ++t.passed;
  }
  CHECK(t.total == 78);
  t.report();
}
