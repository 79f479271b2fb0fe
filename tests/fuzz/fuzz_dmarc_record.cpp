// fuzz_dmarc_record - DMARC TXT records (RFC 7489 6.3 / RFC 9989), as DNS gives them.
// Invariants: no crash, no leak; a parsed record starts with v=DMARC1
// (is_dmarc_record agrees); its percent is 0-100.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "dmarc/core/dmarc_record.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view txt(reinterpret_cast<const char*>(data), size);
  auto r = dmarc::parse_dmarc_record(txt);
  if (r && !dmarc::is_dmarc_record(txt)) std::abort();
  if (r && (r->pct < 0 || r->pct > 100)) std::abort();
  return 0;
}
