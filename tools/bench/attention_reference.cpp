#include "bench/attention_reference.hpp"

#include <algorithm>
#include <cmath>
#include <exception>
#include <thread>

#include "bench/random.hpp"
#include "vidkv/attention_reference.hpp"
#include "vidkv/error.hpp"
#include "vidkv/fp16.hpp"

namespace vidkv::bench {
namespace {
constexpr double kLogitSpread = 2.0;
}  // namespace

std::vector<uint32_t> sample_layers(uint32_t layers, uint32_t count) {
  std::vector<uint32_t> out;
  if (count == 0 || count >= layers) {
    for (uint32_t l = 0; l < layers; ++l) out.push_back(l);
    return out;
  }
  // The middle of each of `count` equal slices of the depth: first and last layers are not
  // favoured, and one sample is the middle layer.
  for (uint32_t i = 0; i < count; ++i) out.push_back(uint32_t((2 * uint64_t(i) + 1) * layers / (2 * count)));
  return out;
}

LayerReference attention_reference(const LayerKv& kv, const WorkloadInfo& info, uint32_t layer, uint32_t queries,
                                   uint64_t seed) {
  LayerReference ref;
  ref.layer = layer;
  const size_t q_size = size_t(info.q_heads) * info.head_dim;
  std::vector<double> keys(kv.keys.size()), values(kv.values.size());
  for (size_t i = 0; i < keys.size(); ++i) keys[i] = fp16::to_float(kv.keys[i]);
  for (size_t i = 0; i < values.size(); ++i) values[i] = fp16::to_float(kv.values[i]);
  const uint32_t D = info.head_dim, group = info.q_heads / info.kv_heads;
  for (uint32_t i = 0; i < queries; ++i) {
    Rng rng(seed, {0x71u, layer, i});
    std::vector<float> q(q_size);
    for (auto& x : q) x = rng.normal();
    // Each head scaled so that its logits q.k / sqrt(D) over the layer have standard deviation
    // kLogitSpread: a softmax neither flat nor one-hot, whatever the keys' scale (the cache tests'
    // "realistic" queries do the same).
    for (uint32_t h = 0; h < info.q_heads; ++h) {
      float* qh = &q[size_t(h) * D];
      double sum = 0, sum2 = 0;
      for (uint32_t t = 0; t < kv.tokens; ++t) {
        const double* k = &keys[(size_t(t) * info.kv_heads + h / group) * D];
        double s = 0;
        for (uint32_t c = 0; c < D; ++c) s += qh[c] * k[c];
        s /= std::sqrt(double(D));
        sum += s;
        sum2 += s * s;
      }
      const double mean = sum / kv.tokens, sd = std::sqrt(std::max(sum2 / kv.tokens - mean * mean, 1e-24));
      for (uint32_t c = 0; c < D; ++c) qh[c] = float(qh[c] * kLogitSpread / sd);
    }
    ref.queries.push_back(std::move(q));
  }
  ref.outputs.resize(queries);
  auto run = [&](uint32_t first, uint32_t step) {
    for (uint32_t i = first; i < queries; i += step)
      ref.outputs[i] = reference::attention(ref.queries[i], info.q_heads, keys, values, kv.tokens, info.kv_heads,
                                            info.head_dim);
  };
  const uint32_t threads = std::min<uint32_t>(queries, std::max(1u, std::min(2u, std::thread::hardware_concurrency())));
  std::vector<std::thread> pool;
  std::vector<std::exception_ptr> failures(threads);  // one slot per thread: no shared writes
  auto guarded = [&](uint32_t t) {
    try {
      run(t, threads);
    } catch (...) {
      failures[t] = std::current_exception();
    }
  };
  for (uint32_t t = 1; t < threads; ++t) pool.emplace_back(guarded, t);
  guarded(0);
  for (auto& th : pool) th.join();
  for (auto& f : failures)
    if (f) std::rethrow_exception(f);
  return ref;
}

void ErrorSum::add_halves(const std::vector<uint16_t>& got, const std::vector<uint16_t>& want) {
  if (got.size() != want.size())
    throw Error(ErrorCode::invalid_argument, "error: " + std::to_string(got.size()) + " values against " +
                                                 std::to_string(want.size()));
  for (size_t i = 0; i < got.size(); ++i) {
    const double a = fp16::to_float(got[i]), b = fp16::to_float(want[i]);
    diff2 += (a - b) * (a - b);
    ref2 += b * b;
  }
}

double ErrorSum::add(const std::vector<float>& got, const std::vector<double>& want) {
  if (got.size() != want.size())
    throw Error(ErrorCode::invalid_argument, "error: " + std::to_string(got.size()) + " values against " +
                                                 std::to_string(want.size()));
  double d = 0, r = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    d += (got[i] - want[i]) * (got[i] - want[i]);
    r += want[i] * want[i];
  }
  diff2 += d;
  ref2 += r;
  return r > 0 ? std::sqrt(d / r) : (d > 0 ? INFINITY : 0.0);
}

double ErrorSum::relative() const { return ref2 > 0 ? std::sqrt(diff2 / ref2) : (diff2 > 0 ? INFINITY : 0.0); }

}  // namespace vidkv::bench
