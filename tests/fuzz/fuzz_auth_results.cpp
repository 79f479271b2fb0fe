// fuzz_auth_results - Authentication-Results field bodies (RFC 8601) as
// received (forged-field detection), and arbitrary text through the
// escapers that build the field we write.
// Invariants: no crash, no leak; what ar_value, ar_pvalue and ar_comment
// make of any text has no CR, LF or NUL (no header injection, mail-auth
// 0.9.1's bug) and a comment stays one balanced comment.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "dmarc/core/auth_results.hpp"

namespace {
void one_line(const std::string& s) {
  for (char c : s)
    if (c == '\r' || c == '\n' || c == '\0') std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)dmarc::authserv_id_of(text);
  one_line(dmarc::ar_value(text));
  one_line(dmarc::ar_pvalue(text));
  std::string c = dmarc::ar_comment(text);
  one_line(c);
  // "(" ... ")": the text's parentheses are escaped, so depth never ends early.
  int depth = 0;
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (c[i] == '\\') {
      ++i;
      continue;
    }
    if (c[i] == '(') ++depth;
    if (c[i] == ')' && --depth == 0 && i + 1 != c.size()) std::abort();
  }
  return 0;
}
