// fuzz_config - dmarc-milter.conf text (an admin's file, or an opendmarc.conf).
// Invariants: no crash, no leak, no hang; an error names a line of the
// text; a configuration that parses prints (format_effective) as one that
// parses again to the same effective configuration.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "dmarc/config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto c = dmarc::parse_config(text, "fuzz.conf");
  if (!c) {
    if (c.error().file != "fuzz.conf" || c.error().line < 0) std::abort();
    return 0;
  }
  std::string eff = dmarc::format_effective(*c);
  auto again = dmarc::parse_config(eff, "effective");
  if (!again) std::abort();
  std::string eff2 = dmarc::format_effective(*again);
  if (eff.substr(eff.find('\n') + 1) != eff2.substr(eff2.find('\n') + 1)) std::abort();
  return 0;
}
