// NAME
//   psl_file - load the Public Suffix List from a file (libpsl)
// DESCRIPTION
//   load_public_suffix_list() reads a list in the publicsuffix.org format
//   (Debian: /usr/share/publicsuffix/public_suffix_list.dat, package
//   publicsuffix) with psl_load_file() and hands it to the core's
//   PublicSuffixList. This is the I/O half; the core only queries.
// DIAGNOSTICS
//   An error string naming the file when it cannot be read or parsed.
#pragma once

#include <string>

#include "dmarc/core/expected.hpp"
#include "dmarc/core/org_domain.hpp"

namespace dmarc {

Expected<PublicSuffixList, std::string> load_public_suffix_list(const std::string& path);

}  // namespace dmarc
