// temp_dir.hpp - a fresh directory under the temporary directory, removed
// with everything in it when the object goes; slurp() reads a file whole.
// Test code only.
#pragma once

#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace dmarc::test {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "dmarc-test") {
    std::string t = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (!::mkdtemp(t.data())) throw std::runtime_error("mkdtemp " + t);
    path_ = t;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// slurp - the bytes of the file at PATH ("" when it cannot be read).
inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// write_file - TEXT as the whole file at PATH, then MODE; throws
// std::runtime_error naming the path when either fails.
inline void write_file(const std::filesystem::path& path, const std::string& text, mode_t mode = 0644) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) throw std::runtime_error("cannot write " + path.string());
  }
  if (::chmod(path.c_str(), mode) != 0)
    throw std::runtime_error("chmod " + path.string() + ": " + std::strerror(errno));
}

// read_files_oldest_first - the contents of the regular files in DIR, by
// modification time, then name; names ending in SKIP_SUFFIX (when given)
// are left out. A missing DIR gives none.
inline std::vector<std::string> read_files_oldest_first(const std::filesystem::path& dir,
                                                        const std::string& skip_suffix = {}) {
  struct Entry {
    std::filesystem::file_time_type time;
    std::string name;
    std::filesystem::path path;
  };
  std::vector<Entry> entries;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file()) continue;
    if (!skip_suffix.empty() && name.size() > skip_suffix.size() &&
        name.compare(name.size() - skip_suffix.size(), skip_suffix.size(), skip_suffix) == 0)
      continue;
    entries.push_back({e.last_write_time(ec), name, e.path()});
  }
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.time != b.time ? a.time < b.time : a.name < b.name; });
  std::vector<std::string> out;
  for (const auto& e : entries) out.push_back(slurp(e.path.string()));
  return out;
}

}  // namespace dmarc::test
