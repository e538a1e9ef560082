#pragma once
// A one-line progress bar on stderr, drawn only when stderr is a terminal (so logs and pipes get
// none of its carriage returns).
#include <chrono>
#include <cstdint>
#include <string>

namespace vidkv::bench {

class Progress {
 public:
  // enabled: the caller's wish (--no-progress); the bar is drawn only if stderr is also a tty.
  Progress(bool enabled, uint64_t total_steps);
  ~Progress();
  void step(const std::string& what, uint64_t steps = 1);
  // Erases the bar so that ordinary output can follow; the next step draws it again.
  void clear();
  // Erases it for good.
  void finish();
  bool drawing() const { return drawing_; }

 private:
  void draw(const std::string& what, bool force);

  bool drawing_;
  uint64_t total_, done_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_{};
};

}  // namespace vidkv::bench
