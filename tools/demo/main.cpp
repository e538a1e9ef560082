// vidkv-demo: the main job until the benchmark exists. On the default device (VIDKV_DEVICE), it
// quantizes a keys-shaped tensor (4 KV heads x 6272 tokens x 128 channels, 32 video frames of 196
// tokens) at every bit width, decodes it again, checks both against the CPU reference, and reports
// reconstruction error and throughput (GB/s of fp16 input) beside a copy bandwidth measured in
// the same run.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/random_data.hpp"
#include "vidkv/fp16.hpp"
#include "vidkv/error.hpp"
#include "vidkv/gpu_quantizer.hpp"
#include "vidkv/reference.hpp"
#include "vidkv/runtime/timestamps.hpp"
#include "vidkv/version.hpp"

using namespace vidkv;

namespace {

constexpr int kRepeats = 5;

// Median GPU time in ms of `record`, each repeat in its own submission between two timestamps.
template <typename Record>
double time_ms(const std::shared_ptr<rt::Context>& ctx, Record record) {
  rt::TimestampQueries queries(ctx, 2);
  rt::CommandRunner runner(ctx);
  std::vector<double> times;
  for (int i = 0; i < kRepeats; ++i) {
    runner.run([&](VkCommandBuffer cmd) {
      queries.reset(cmd);
      queries.write(cmd, 0);
      record(cmd);
      queries.write(cmd, 1);
    });
    times.push_back(queries.elapsed_ms(0, 1));
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

double rel_l2(const std::vector<uint16_t>& a, const std::vector<uint16_t>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double x = fp16::to_float(a[i]), y = fp16::to_float(b[i]);
    num += (x - y) * (x - y);
    den += x * x;
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--version") == 0) {
      std::printf("vidkv-demo %s\n", VIDKV_VERSION_STRING);
      return 0;
    }
    std::fprintf(stderr, "usage: vidkv-demo [--version]   (device: VIDKV_DEVICE)\n");
    return 2;
  }
  try {
    auto ctx = rt::Context::create();
    const auto& info = ctx->info();
    std::printf("vidkv %s on %s (%s, %s %s)\n", VIDKV_VERSION_STRING, info.name.c_str(),
                rt::device_type_name(info.type), info.driver_name.c_str(), info.driver_info.c_str());
    const TensorShape shape{4, 32 * 196, 128};
    const TensorLayout layout = TensorLayout::thd(shape);
    const uint64_t seed = 20250321;
    const auto input = tools::random_halves(shape, layout, seed, false);
    const uint64_t input_bytes = input.size() * 2;
    std::printf("keys-shaped input: %u heads x %u tokens x %u channels (fp16, %.1f MiB), seed %llu\n\n",
                shape.heads, shape.tokens, shape.dim, input_bytes / 1048576.0, (unsigned long long)seed);

    rt::Buffer in(ctx, input_bytes), out(ctx, input_bytes), copy_dst(ctx, input_bytes);
    in.upload(input.data(), input_bytes);
    const double copy_ms = time_ms(ctx, [&](VkCommandBuffer cmd) {
      rt::record_copy(cmd, in.view(), copy_dst.view(), input_bytes);
    });
    const double copy_gbps = 2.0 * input_bytes / (copy_ms * 1e6);  // read + write
    std::printf("buffer copy: %.3f ms, %.2f GB/s (bytes read + written)\n\n", copy_ms, copy_gbps);

    GpuQuantizer gpu(ctx);
    struct Row { QuantBits bits; QuantAxis axis; TernaryScale ts; };
    const Row rows[] = {{QuantBits::b8, QuantAxis::channel, TernaryScale::mean_abs},
                        {QuantBits::b4, QuantAxis::channel, TernaryScale::mean_abs},
                        {QuantBits::b2, QuantAxis::channel, TernaryScale::mean_abs},
                        {QuantBits::b1_58, QuantAxis::channel, TernaryScale::mean_abs},
                        {QuantBits::b1_58, QuantAxis::channel, TernaryScale::lsq},
                        {QuantBits::b1, QuantAxis::channel, TernaryScale::mean_abs},
                        {QuantBits::b2, QuantAxis::token, TernaryScale::mean_abs}};
    std::printf("%-6s %-8s %-9s %9s %10s %10s %11s %11s %10s %10s\n", "bits", "axis", "ternary", "packed",
                "rel_l2", "quant_ms", "quant_GB/s", "dequant_ms", "deq_GB/s", "vs_ref");
    bool all_exact = true;
    for (const auto& row : rows) {
      const QuantSpec spec{row.bits, row.axis, 32, row.ts};
      const PackedBytes pb = packed_bytes(spec, shape);
      rt::Buffer codes(ctx, pb.codes), scales(ctx, pb.scales), mins(ctx, pb.mins);
      const PackedBuffers packed{codes.view(), scales.view(), mins.view()};
      const double q_ms = time_ms(ctx, [&](VkCommandBuffer cmd) {
        gpu.record_quantize(cmd, spec, shape, layout, ElementType::f16, in.view(), packed);
      });
      const double d_ms = time_ms(ctx, [&](VkCommandBuffer cmd) {
        gpu.record_dequantize(cmd, spec, shape, packed, layout, ElementType::f16, out.view());
      });
      std::vector<uint16_t> decoded(input.size());
      out.download(decoded.data(), input_bytes);
      const auto expected = reference::dequantize(reference::quantize(spec, shape, input.data(), layout), layout);
      const bool exact = decoded == expected;
      all_exact = all_exact && exact;
      std::printf("%-6s %-8s %-9s %8.2fM %10.4f %10.3f %11.2f %11.3f %10.2f %10s\n", bits_name(row.bits),
                  axis_name(row.axis), row.bits == QuantBits::b1_58 ? ternary_scale_name(row.ts) : "-",
                  pb.total() / 1048576.0, rel_l2(input, decoded), q_ms, input_bytes / (q_ms * 1e6), d_ms,
                  input_bytes / (d_ms * 1e6), exact ? "bit-exact" : "MISMATCH");
    }
    std::printf("\nGB/s count fp16 input bytes (quantize reads them, dequantize writes them); times are GPU\n"
                "timestamps, median of %d. 'packed' is codes + fp16 scales + fp16 mins in the original layout.\n",
                kRepeats);
    return all_exact ? 0 : 1;
  } catch (const Error& e) {
    std::fprintf(stderr, "vidkv-demo: %s\n", e.what());
    return 1;
  }
}
