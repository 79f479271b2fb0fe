// mail_dir.hpp - a mailer that is a real program (/bin/sh writing each mail
// and its recipients into a directory), and the reader of what it wrote;
// for the dmarc-report run tests.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dmarc/report/mailer.hpp"
#include "support/temp_dir.hpp"

namespace dmarc::test {

class MailDir {
 public:
  explicit MailDir(std::string dir) : dir_(std::move(dir)) { std::filesystem::create_directories(dir_); }
  // mailer - each mail into DIR/mail.XXXXXX, its recipients into .rcpt.
  std::unique_ptr<Mailer> mailer() const {
    return command_mailer({"/bin/sh", "-c", "f=$(mktemp " + dir_ + "/mail.XXXXXX); cat > $f; echo \"$@\" > $f.rcpt"},
                          std::chrono::milliseconds(10000));
  }
  // mails - (recipients separated by blanks, the mail) for each mail so far.
  std::vector<std::pair<std::string, std::string>> mails() const {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      std::string p = e.path().string();
      if (p.size() > 5 && p.substr(p.size() - 5) == ".rcpt") continue;
      std::string r = slurp(p + ".rcpt");
      if (!r.empty() && r.back() == '\n') r.pop_back();
      out.emplace_back(r, slurp(p));
    }
    return out;
  }

 private:
  std::string dir_;
};

}  // namespace dmarc::test
