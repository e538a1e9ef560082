// VkFFT plans (runtime/fft.hpp) against a double-precision DFT computed here, for every D_normal
// shape the FFT key path meets (powers of two, other composites, primes), batched. Outputs are
// poisoned with 0xFF bytes (a NaN in every float) so an element the transform did not write fails.
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <iostream>
#include <numbers>
#include <random>
#include <vector>

#include "common/random_data.hpp"
#include "vidkv/runtime/buffer.hpp"
#include "vidkv/runtime/commands.hpp"
#include "vidkv/runtime/context.hpp"
#include "vidkv/runtime/fft.hpp"
#include "vulkan_fixture.hpp"

namespace vidkv::test {
namespace {

using FftTest = VulkanTest;

constexpr double kTolerance = 1e-5;

// X[k] = sum_n x[n] exp(-2 pi i k n / N) for k = 0..N/2, in double.
std::vector<std::complex<double>> reference_r2c(const float* x, uint32_t n) {
  std::vector<std::complex<double>> out(n / 2 + 1);
  for (uint32_t k = 0; k <= n / 2; ++k) {
    std::complex<double> sum = 0.0;
    for (uint32_t j = 0; j < n; ++j) {
      // k * j reduced mod n keeps the angle small, so the reference itself stays exact to ~1e-15.
      const double angle = -2.0 * std::numbers::pi * double((uint64_t(k) * j) % n) / double(n);
      sum += double(x[j]) * std::complex<double>(std::cos(angle), std::sin(angle));
    }
    out[k] = sum;
  }
  return out;
}

struct Errors {
  double r2c = 0.0;        // worst relative L2 error of a row of the forward transform
  double round_trip = 0.0; // worst relative L2 error of C2R(R2C(x)) against length * x
};

Errors check_size(const std::shared_ptr<rt::Context>& ctx, rt::FftPlanCache& cache, uint32_t length,
                  uint32_t batch, uint64_t seed) {
  const rt::FftPlan& forward = cache.get(length, batch, false);
  const rt::FftPlan& inverse = cache.get(length, batch, true);
  const uint32_t bins = length / 2 + 1;

  std::mt19937_64 rng(seed ^ (uint64_t(length) << 32) ^ batch);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> x(size_t(batch) * length);
  for (auto& v : x) v = normal(rng);

  rt::Buffer real_in(ctx, forward.real_bytes());
  rt::Buffer spectrum(ctx, forward.complex_bytes());
  rt::Buffer real_out(ctx, inverse.real_bytes());
  real_in.upload(x.data(), x.size() * sizeof(float));
  spectrum.fill(0xFF);
  real_out.fill(0xFF);

  // Forward and inverse in one command buffer, as the key path will record them.
  rt::CommandRunner runner(ctx);
  runner.run([&](VkCommandBuffer cmd) {
    rt::transfer_to_compute_barrier(cmd);
    forward.record(cmd, real_in.view(), spectrum.view());
    rt::compute_to_compute_barrier(cmd);
    inverse.record(cmd, spectrum.view(), real_out.view());
  });
  std::vector<float> spec(size_t(batch) * bins * 2), y(size_t(batch) * length);
  spectrum.download(spec.data(), forward.complex_bytes());
  real_out.download(y.data(), y.size() * sizeof(float));

  Errors worst;
  for (uint32_t b = 0; b < batch; ++b) {
    const float* row = x.data() + size_t(b) * length;
    const auto ref = reference_r2c(row, length);
    double err2 = 0.0, ref2 = 0.0;
    for (uint32_t k = 0; k < bins; ++k) {
      const float re = spec[(size_t(b) * bins + k) * 2], im = spec[(size_t(b) * bins + k) * 2 + 1];
      if (std::isnan(re) || std::isnan(im)) {
        ADD_FAILURE() << "R2C row " << b << " bin " << k << " is NaN (unwritten?)";
        return {1.0, 1.0};
      }
      err2 += std::norm(std::complex<double>(re, im) - ref[k]);
      ref2 += std::norm(ref[k]);
    }
    worst.r2c = std::max(worst.r2c, std::sqrt(err2 / ref2));
    err2 = ref2 = 0.0;
    for (uint32_t j = 0; j < length; ++j) {
      const float v = y[size_t(b) * length + j];
      if (std::isnan(v)) {
        ADD_FAILURE() << "C2R row " << b << " element " << j << " is NaN (unwritten?)";
        return {1.0, 1.0};
      }
      const double expected = double(length) * double(row[j]);  // the inverse is unnormalized
      err2 += (v - expected) * (v - expected);
      ref2 += expected * expected;
    }
    worst.round_trip = std::max(worst.round_trip, std::sqrt(err2 / ref2));
  }
  return worst;
}

TEST_F(FftTest, R2CMatchesDoubleDftAndC2RRoundTrips) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  rt::FftPlanCache cache(ctx);
  for (uint32_t length : {16u, 17u, 31u, 48u, 64u, 96u, 100u, 127u, 128u}) {
    double worst_r2c = 0.0, worst_round_trip = 0.0;
    for (uint32_t batch : {1u, 7u, 300u}) {
      SCOPED_TRACE("length " + std::to_string(length) + ", batch " + std::to_string(batch));
      const Errors e = check_size(ctx, cache, length, batch, seed);
      EXPECT_LT(e.r2c, kTolerance);
      EXPECT_LT(e.round_trip, kTolerance);
      worst_r2c = std::max(worst_r2c, e.r2c);
      worst_round_trip = std::max(worst_round_trip, e.round_trip);
    }
    std::cout << "[ FFT      ] length " << length << ": max relative L2 error R2C " << worst_r2c
              << ", C2R(R2C) " << worst_round_trip << "\n";
  }
  EXPECT_EQ(cache.size(), 9u * 3u * 2u);
}

TEST_F(FftTest, CacheReturnsTheSamePlanPerSize) {
  rt::FftPlanCache cache(ctx);
  const rt::FftPlan& a = cache.get(48, 7, false);
  EXPECT_EQ(&a, &cache.get(48, 7, false));
  EXPECT_NE(&a, &cache.get(48, 7, true));
  EXPECT_NE(&a, &cache.get(48, 8, false));
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(a.length(), 48u);
  EXPECT_EQ(a.batch(), 7u);
  EXPECT_FALSE(a.inverse());
  EXPECT_EQ(a.real_bytes(), 7u * 48u * 4u);
  EXPECT_EQ(a.complex_bytes(), 7u * 25u * 8u);
}

TEST_F(FftTest, InvalidSizesAreErrors) {
  rt::FftPlanCache cache(ctx);
  for (auto [length, batch] : {std::pair{0u, 1u}, std::pair{16u, 0u}}) {
    try {
      cache.get(length, batch, false);
      ADD_FAILURE() << "length " << length << " batch " << batch << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_argument) << e.what();
    }
  }
  // 3^10: odd, and too long for one pass through shared memory on any device; VkFFT 1.2.26 does
  // R2C of odd lengths only in a single pass (VKFFT_ERROR_UNSUPPORTED_FFT_LENGTH_R2C).
  try {
    cache.get(59049, 1, false);
    ADD_FAILURE() << "length 59049 accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument) << e.what();
    EXPECT_NE(std::string(e.what()).find("59049"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("UNSUPPORTED_FFT_LENGTH_R2C"), std::string::npos) << e.what();
  }
  EXPECT_EQ(cache.size(), 0u);  // refused sizes are not cached
}

// VkFFT rewrites its descriptor sets only when it sees new buffer pointers; the plan must notice
// new handles (and only then) so a second record with other buffers transforms those.
TEST_F(FftTest, PlanRecordsAgainWithOtherBuffers) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const uint32_t length = 48, batch = 3, bins = length / 2 + 1;
  rt::FftPlan plan(ctx, length, batch, false);
  rt::CommandRunner runner(ctx);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::unique_ptr<rt::Buffer> in, out;
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    // Round 2 reuses round 1's buffers with new contents (no descriptor rewrite needed).
    if (round < 2) {
      in = std::make_unique<rt::Buffer>(ctx, plan.real_bytes());
      out = std::make_unique<rt::Buffer>(ctx, plan.complex_bytes());
    }
    std::vector<float> x(size_t(batch) * length), spec(size_t(batch) * bins * 2);
    for (auto& v : x) v = normal(rng);
    in->upload(x.data(), x.size() * sizeof(float));
    out->fill(0xFF);
    runner.run([&](VkCommandBuffer cmd) {
      rt::transfer_to_compute_barrier(cmd);
      plan.record(cmd, in->view(), out->view());
    });
    out->download(spec.data(), spec.size() * sizeof(float));
    for (uint32_t b = 0; b < batch; ++b) {
      const auto ref = reference_r2c(x.data() + size_t(b) * length, length);
      double err2 = 0.0, ref2 = 0.0;
      for (uint32_t k = 0; k < bins; ++k) {
        const std::complex<double> got(spec[(size_t(b) * bins + k) * 2], spec[(size_t(b) * bins + k) * 2 + 1]);
        err2 += std::norm(got - ref[k]);
        ref2 += std::norm(ref[k]);
      }
      EXPECT_LT(std::sqrt(err2 / ref2), kTolerance) << "row " << b;  // NaN (unwritten) fails too
    }
  }
}

TEST_F(FftTest, RecordRejectsOffsetsAndSmallBuffers) {
  rt::FftPlan plan(ctx, 16, 2, false);
  rt::Buffer real(ctx, 4096), spectrum(ctx, 4096);
  rt::CommandRunner runner(ctx);
  auto expect_error = [&](const rt::BufferView& in, const rt::BufferView& out, ErrorCode code) {
    try {
      runner.run([&](VkCommandBuffer cmd) { plan.record(cmd, in, out); });
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
    }
  };
  expect_error(real.view(256, 1024), spectrum.view(), ErrorCode::invalid_argument);
  expect_error(real.view(0, plan.real_bytes() - 4), spectrum.view(), ErrorCode::buffer_too_small);
  expect_error(real.view(), spectrum.view(0, plan.complex_bytes() - 8), ErrorCode::buffer_too_small);
  expect_error(real.view(), real.view(), ErrorCode::invalid_argument);
}

}  // namespace
}  // namespace vidkv::test
