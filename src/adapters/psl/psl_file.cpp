// psl_file.cpp - load the Public Suffix List through libpsl
#include "dmarc/adapters/psl_file.hpp"

#include <libpsl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

namespace dmarc {

Expected<PublicSuffixList, std::string> load_public_suffix_list(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return Unexpected(path + ": " + std::strerror(errno));
  psl_ctx_t* ctx = psl_load_file(path.c_str());
  if (!ctx) return Unexpected(path + ": not a readable Public Suffix List");
  if (psl_suffix_count(ctx) <= 0) {
    psl_free(ctx);
    return Unexpected(path + ": no public suffix rules found");
  }
  return PublicSuffixList(ctx);
}

}  // namespace dmarc
