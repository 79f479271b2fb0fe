// fuzz_split.hpp - how the multi-field fuzz targets cut one input into
// fields: RS (0x1E) ends a field, GS (0x1D) makes the byte after it
// literal, so every byte value can reach every field.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace dmarc::fuzz {

inline std::vector<std::string> split(std::string_view in) {
  std::vector<std::string> out(1);
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\x1d' && i + 1 < in.size())
      out.back() += in[++i];
    else if (in[i] == '\x1e')
      out.emplace_back();
    else
      out.back() += in[i];
  }
  return out;
}

}  // namespace dmarc::fuzz
