#pragma once
// The bench's random numbers: xoshiro256** seeded through splitmix64 from (seed, keys...), with
// Box-Muller normals. Fixed arithmetic, so the same seed gives the same workload on every platform
// and standard library (<random>'s distributions are implementation-defined).
#include <cmath>
#include <cstdint>
#include <initializer_list>

namespace vidkv::bench {

class Rng {
 public:
  Rng(uint64_t seed, std::initializer_list<uint64_t> keys) {
    uint64_t state = seed;
    for (uint64_t key : keys) state = splitmix(state) ^ (key * 0xd1b54a32d192ed03ull);
    for (auto& w : s_) w = splitmix(state);
  }
  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  float normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    constexpr double two_pi = 6.283185307179586476925;
    const double u1 = 1.0 - uniform(), u2 = uniform();  // u1 in (0, 1]: log is finite
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = float(r * std::sin(two_pi * u2));
    has_spare_ = true;
    return float(r * std::cos(two_pi * u2));
  }

 private:
  static uint64_t splitmix(uint64_t& state) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
  float spare_ = 0.0f;
  bool has_spare_ = false;
};

}  // namespace vidkv::bench
