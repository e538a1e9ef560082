#include "bench/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace vidkv::bench {
namespace {
constexpr int kBarWidth = 30;
constexpr auto kRedrawEvery = std::chrono::milliseconds(100);
}  // namespace

Progress::Progress(bool enabled, uint64_t total_steps)
    : drawing_(enabled && isatty(STDERR_FILENO) == 1), total_(total_steps), start_(std::chrono::steady_clock::now()) {}

Progress::~Progress() { finish(); }

void Progress::step(const std::string& what, uint64_t steps) {
  done_ += steps;
  draw(what, false);
}

void Progress::draw(const std::string& what, bool force) {
  if (!drawing_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < kRedrawEvery) return;
  last_draw_ = now;
  const double fraction = total_ ? std::min(1.0, double(done_) / double(total_)) : 0.0;
  const int filled = int(fraction * kBarWidth);
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  std::string bar(size_t(filled), '#');
  bar.append(size_t(kBarWidth - filled), '.');
  // \r and erase-to-end-of-line keep it on one line; the label is cut so the line does not wrap.
  std::fprintf(stderr, "\r\033[K[%s] %3d%% %5.0fs  %.60s", bar.c_str(), int(fraction * 100), elapsed, what.c_str());
  std::fflush(stderr);
}

void Progress::clear() {
  if (!drawing_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  last_draw_ = {};  // redraw at the next step
}

void Progress::finish() {
  clear();
  drawing_ = false;
}

}  // namespace vidkv::bench
