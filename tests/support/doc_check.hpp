// doc_check.hpp - helpers for the tests that hold documentation to the code
//
//   std::string text = dmarc::test::slurp(path);   // (temp_dir.hpp)
//   dmarc::test::check_same_names(in_code, in_page, "the man page");
//
// check_same_names CHECKs both ways: every name of CODE is in DOC ("missing
// from the man page: X") and every name of DOC is in CODE ("the man page
// names what does not exist: X").
#pragma once

#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "support/temp_dir.hpp"

namespace dmarc::test {

inline void check_same_names(const std::set<std::string>& code, const std::set<std::string>& doc,
                             const std::string& where) {
  for (const auto& n : code) {
    INFO("missing from " << where << ": " << n);
    CHECK(doc.count(n) == 1);
  }
  for (const auto& n : doc) {
    INFO(where << " names what does not exist: " << n);
    CHECK(code.count(n) == 1);
  }
}

}  // namespace dmarc::test
