// mailer.cpp - ReportCommand (posix_spawn) and ReportSMTP (libcurl) (dmarc/report/mailer.hpp)
#include "dmarc/report/mailer.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

extern char** environ;

namespace dmarc {

namespace {

constexpr std::size_t kMaxCapturedOutput = 4096;

std::string errno_text(const char* what, int err) { return std::string(what) + ": " + std::strerror(err); }

class Fd {
 public:
  explicit Fd(int fd = -1) noexcept : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const noexcept { return fd_; }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// The sysexits(3) statuses sendmail-compatible programs use for a mail
// that cannot be delivered however often it is tried.
bool permanent_status(int status) noexcept {
  return status == 64 /*EX_USAGE*/ || status == 65 /*EX_DATAERR*/ || status == 67 /*EX_NOUSER*/ ||
         status == 68 /*EX_NOHOST*/ || status == 77 /*EX_NOPERM*/;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : " ") + s;
  return out;
}

// Blocks SIGPIPE in this thread while it writes to a child's pipe (a
// command that exits early makes write() fail with EPIPE instead of
// killing dmarc-report), and discards a SIGPIPE that became pending.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;
  ~SigpipeBlock() {
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    timespec zero{0, 0};
    while (sigtimedwait(&pipe_set, nullptr, &zero) == SIGPIPE) {
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t old_;
};

class CommandMailer final : public Mailer {
 public:
  CommandMailer(std::vector<std::string> argv, std::chrono::milliseconds timeout)
      : argv_(std::move(argv)), timeout_(timeout) {}
  std::string describe() const override { return "command " + join(argv_); }
  std::optional<MailerError> send(std::string_view from, const std::vector<std::string>& to,
                                  std::string_view message) override;

 private:
  std::vector<std::string> argv_;
  std::chrono::milliseconds timeout_;
};

// The arguments for one mail: a sendmail(1) without -f gets "-f FROM" (the
// envelope sender of the report); a command without -t gets the
// recipients as its last arguments.
std::vector<std::string> command_words(const std::vector<std::string>& argv, std::string_view from,
                                       const std::vector<std::string>& to) {
  std::vector<std::string> words = argv;
  bool has_t = false, has_f = false;
  for (std::size_t i = 1; i < argv.size(); ++i) {
    if (argv[i] == "-t") has_t = true;
    if (argv[i].rfind("-f", 0) == 0) has_f = true;
  }
  std::string base = argv[0].substr(argv[0].rfind('/') + 1);
  if (base == "sendmail" && !has_f && !from.empty()) {
    words.insert(words.begin() + 1, {"-f", std::string(from)});
  }
  if (!has_t) {
    words.emplace_back("--");
    words.insert(words.end(), to.begin(), to.end());
  }
  return words;
}

std::optional<MailerError> CommandMailer::send(std::string_view from, const std::vector<std::string>& to,
                                               std::string_view message) {
  const std::string what = describe();
  if (argv_.empty()) return MailerError{"ReportCommand is empty", false};
  std::vector<std::string> words = command_words(argv_, from, to);
  std::vector<char*> cargv;
  for (auto& w : words) cargv.push_back(w.data());
  cargv.push_back(nullptr);

  int in_pipe[2], out_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) return MailerError{what + ": " + errno_text("pipe", errno), true};
  Fd in_r(in_pipe[0]), in_w(in_pipe[1]);
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return MailerError{what + ": " + errno_text("pipe", errno), true};
  Fd out_r(out_pipe[0]), out_w(out_pipe[1]);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_r.get(), 0);
  posix_spawn_file_actions_adddup2(&fa, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, out_w.get(), 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGHUP);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, cargv[0], &fa, &attr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return MailerError{what + ": " + errno_text("cannot run", rc), false};
  in_r.reset();
  out_w.reset();
  ::fcntl(in_w.get(), F_SETFL, O_NONBLOCK);
  ::fcntl(out_r.get(), F_SETFL, O_NONBLOCK);

  SigpipeBlock no_sigpipe;
  if (message.empty()) in_w.reset();  // nothing to write: EOF at once
  auto deadline = std::chrono::steady_clock::now() + timeout_;
  std::size_t written = 0;
  std::string output;
  bool output_open = true;
  int status = 0;
  bool exited = false;
  bool status_lost = false;
  std::string write_error;
  while (true) {
    if (!exited) {
      pid_t w = ::waitpid(pid, &status, WNOHANG);
      if (w == pid) exited = true;
      if (w < 0 && errno == ECHILD) {
        // Reaped by someone else (SIGCHLD ignored): gone, status unknown.
        exited = true;
        status_lost = true;
      }
    }
    // Done once the child is gone and its output is read to the end.
    if (exited && !output_open) break;
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    pollfd fds[2];
    nfds_t n = 0;
    if (output_open) fds[n++] = pollfd{out_r.get(), POLLIN, 0};
    int in_index = -1;
    if (in_w.get() >= 0) {
      in_index = static_cast<int>(n);
      fds[n++] = pollfd{in_w.get(), POLLOUT, 0};
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
    int wait_ms = static_cast<int>(std::min<long long>(left, exited ? 50 : 100));
    if (n == 0) {
      if (exited) break;
      ::poll(nullptr, 0, wait_ms);
      continue;
    }
    int pr = ::poll(fds, n, wait_ms);
    if (pr < 0 && errno != EINTR) break;
    if (pr <= 0) {
      if (exited) break;  // exited, output quiet: a grandchild holds it open
      continue;
    }
    if (output_open && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      char buf[4096];
      ssize_t r = ::read(out_r.get(), buf, sizeof buf);
      if (r > 0) {
        if (output.size() < kMaxCapturedOutput)
          output.append(buf, std::min<std::size_t>(static_cast<std::size_t>(r), kMaxCapturedOutput - output.size()));
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        output_open = false;
        out_r.reset();
      }
    }
    if (in_index >= 0 && (fds[in_index].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = ::write(in_w.get(), message.data() + written, message.size() - written);
      if (w > 0) {
        written += static_cast<std::size_t>(w);
        if (written == message.size()) in_w.reset();  // EOF for the command
      } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
        write_error = errno_text("writing the message", errno);
        in_w.reset();
      }
    }
  }
  in_w.reset();
  out_r.reset();
  bool timed_out = false;
  if (!exited) {
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w < 0 && errno == ECHILD) {
      status_lost = true;
    } else if (w != pid) {
      timed_out = true;
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
  }
  auto trimmed = [&] {
    std::string o = output;
    while (!o.empty() && (o.back() == '\n' || o.back() == '\r' || o.back() == ' ')) o.pop_back();
    for (auto& c : o) {
      if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    }
    return o.empty() ? std::string() : ": " + o;
  };
  if (status_lost) {
    return MailerError{what + ": its exit status was lost (is SIGCHLD ignored?)" + trimmed(), true};
  }
  if (timed_out) {
    return MailerError{what + ": no exit within " + std::to_string(timeout_.count()) + " ms; killed" + trimmed(),
                       true};
  }
  if (WIFSIGNALED(status)) {
    return MailerError{what + ": killed by signal " + std::to_string(WTERMSIG(status)) + trimmed(), true};
  }
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code != 0) {
    return MailerError{what + ": exit status " + std::to_string(code) + trimmed(), !permanent_status(code)};
  }
  if (written != message.size()) {
    // Exit 0 without reading the whole message: it did not take the mail.
    return MailerError{what + ": exited before reading the whole message" +
                           (write_error.empty() ? std::string() : " (" + write_error + ")") + trimmed(),
                       true};
  }
  return std::nullopt;
}

// --- SMTP through libcurl ---

void init_curl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CurlFree {
  void operator()(CURL* c) const noexcept { curl_easy_cleanup(c); }
};
struct SlistFree {
  void operator()(curl_slist* l) const noexcept { curl_slist_free_all(l); }
};

struct Upload {
  std::string data;
  std::size_t pos = 0;
};

size_t read_upload(char* buf, size_t size, size_t nitems, void* user) {
  auto* u = static_cast<Upload*>(user);
  std::size_t n = std::min(size * nitems, u->data.size() - u->pos);
  std::memcpy(buf, u->data.data() + u->pos, n);
  u->pos += n;
  return n;
}

size_t discard(char*, size_t size, size_t nitems, void*) { return size * nitems; }

// crlf - SMTP wants CRLF line ends (RFC 5321 2.3.8); libcurl does the dot
// stuffing.
std::string crlf(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 40);
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) out += '\r';
    out += s[i];
  }
  if (!out.empty() && out.back() != '\n') out += "\r\n";
  return out;
}

class SmtpMailer final : public Mailer {
 public:
  SmtpMailer(std::string host_port, std::string helo, std::chrono::milliseconds timeout)
      : host_port_(std::move(host_port)), helo_(std::move(helo)), timeout_(timeout) {}
  std::string describe() const override { return "smtp " + host_port_; }
  std::optional<MailerError> send(std::string_view from, const std::vector<std::string>& to,
                                  std::string_view message) override {
    init_curl();
    const std::string what = describe();
    // Declared before the handle: libcurl may write to it until cleanup.
    char errbuf[CURL_ERROR_SIZE] = {0};
    std::unique_ptr<CURL, CurlFree> c(curl_easy_init());
    if (!c) return MailerError{what + ": curl_easy_init failed", true};
    std::unique_ptr<curl_slist, SlistFree> rcpts;
    for (const auto& t : to) {
      curl_slist* l = curl_slist_append(rcpts.get(), ("<" + t + ">").c_str());
      if (!l) return MailerError{what + ": out of memory", true};
      (void)rcpts.release();
      rcpts.reset(l);
    }
    Upload up{crlf(message)};
    // The URL's path is the name curl greets with (EHLO).
    std::string url = "smtp://" + host_port_ + "/" + helo_;
    std::string mail_from = "<" + std::string(from) + ">";
    curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(c.get(), CURLOPT_MAIL_FROM, mail_from.c_str());
    curl_easy_setopt(c.get(), CURLOPT_MAIL_RCPT, rcpts.get());
    curl_easy_setopt(c.get(), CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c.get(), CURLOPT_READFUNCTION, read_upload);
    curl_easy_setopt(c.get(), CURLOPT_READDATA, &up);
    curl_easy_setopt(c.get(), CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(up.data.size()));
    curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c.get(), CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c.get(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_.count()));
    curl_easy_setopt(c.get(), CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min<long long>(timeout_.count(), 30000)));
    // Opportunistic STARTTLS, as MTAs relay to each other: encrypt when
    // offered, without a certificate check (a relay's certificate is
    // rarely one a public CA signed for its name).
    curl_easy_setopt(c.get(), CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_TRY));
    curl_easy_setopt(c.get(), CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c.get(), CURLOPT_SSL_VERIFYHOST, 0L);
    CURLcode rc = curl_easy_perform(c.get());
    if (rc == CURLE_OK) return std::nullopt;
    long code = 0;
    curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &code);
    std::string text = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    if (code) text += " (last reply " + std::to_string(code) + ")";
    return MailerError{what + ": " + text, !(code >= 500 && code < 600)};
  }

 private:
  std::string host_port_;
  std::string helo_;
  std::chrono::milliseconds timeout_;
};

}  // namespace

Expected<std::vector<std::string>, std::string> split_command(std::string_view command) {
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (std::size_t i = 0; i < command.size(); ++i) {
    char c = command[i];
    if (quote) {
      if (c == quote) {
        quote = 0;
      } else if (c == '\\' && quote == '"' && i + 1 < command.size()) {
        cur += command[++i];
      } else {
        cur += c;
      }
      continue;
    }
    if (c == ' ' || c == '\t') {
      if (in_word) words.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else if (c == '"' || c == '\'') {
      quote = c;
      in_word = true;
    } else if (c == '\\') {
      if (i + 1 >= command.size()) return Unexpected{std::string("a backslash ends the command")};
      cur += command[++i];
      in_word = true;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (quote) return Unexpected{std::string("unterminated ") + quote + " quote"};
  if (in_word) words.push_back(std::move(cur));
  if (words.empty()) return Unexpected{std::string("the command is empty")};
  if (words[0].empty() || words[0][0] != '/') {
    return Unexpected{"the program '" + words[0] + "' must be an absolute path (no shell, no PATH search)"};
  }
  return words;
}

std::unique_ptr<Mailer> command_mailer(std::vector<std::string> argv, std::chrono::milliseconds timeout) {
  return std::make_unique<CommandMailer>(std::move(argv), timeout);
}

std::unique_ptr<Mailer> smtp_mailer(std::string host_port, std::string helo, std::chrono::milliseconds timeout) {
  return std::make_unique<SmtpMailer>(std::move(host_port), std::move(helo), timeout);
}

}  // namespace dmarc
