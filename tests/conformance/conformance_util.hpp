// conformance_util.hpp - shared helpers for the ../shared/conformance suites
//
// Each suite reads its data in place (never copied into the project),
// counts passes and deliberate differences, and prints one summary line
// starting with "conformance:" that tests/run-all.sh shows at the end.
#pragma once

#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

namespace dmarc::test {

inline std::string conformance_path(const std::string& rel) { return std::string(DMARC_CONFORMANCE_DIR) + "/" + rel; }

inline nlohmann::json load_json(const std::string& rel) {
  std::ifstream in(conformance_path(rel));
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

inline std::string read_text(const std::string& rel) {
  std::ifstream in(conformance_path(rel));
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Tally - counts, and a printed summary. A case in `known` must actually
// differ (otherwise the list is stale and the test fails).
struct Tally {
  std::string suite;
  int total = 0, passed = 0, differ = 0;
  void report() const {
    std::cout << "conformance: " << suite << ": " << passed << "/" << total << " pass";
    if (differ) std::cout << ", " << differ << " deliberate differences (listed in the test)";
    std::cout << "\n";
  }
};

}  // namespace dmarc::test
