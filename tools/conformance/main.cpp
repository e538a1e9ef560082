// vidkv-conformance: every shader against the CPU reference on the selected device (VIDKV_DEVICE),
// with the validation layer on, over a fixed matrix of shapes and fresh random inputs (grouped
// quantizers, VidKV keys with VkFFT, trit packing, STP); and, with --golden DIR, every golden case
// of a kind it supports (per-channel, dynamic keys, FFT keys, STP) through the reference and the GPU. One line per check, then "N passed,
// N failed"; exit status 1 on any failure.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/golden.hpp"
#include "common/golden_checks.hpp"
#include "common/golden_checks_vidkv.hpp"
#include "common/gpu_checks.hpp"
#include "common/gpu_golden_impls.hpp"
#include "common/gpu_key_checks.hpp"
#include "common/json.hpp"
#include "common/random_data.hpp"
#include "conformance/report.hpp"
#include "vidkv/error.hpp"
#include "vidkv/gpu_quantizer.hpp"
#include "vidkv/reference.hpp"
#include "vidkv/version.hpp"

using namespace vidkv;

namespace {

void usage() {
  std::fprintf(stderr,
               "usage: vidkv-conformance [--golden DIR] [--seed N] [--json FILE] [--no-validation] [--version]\n"
               "  --golden DIR     also run every golden case under DIR (default: none)\n"
               "  --seed N         seed of the random inputs (default: fresh, printed)\n"
               "  --json FILE      write every check as JSON\n"
               "  --no-validation  run without VK_LAYER_KHRONOS_validation\n"
               "  VIDKV_DEVICE     device index or name substring\n");
}

struct Gpus {
  GpuQuantizer grouped;
  GpuKeyQuantizer keys;
  GpuStp stp;
  explicit Gpus(const std::shared_ptr<rt::Context>& ctx) : grouped(ctx), keys(ctx), stp(ctx) {}
};

void run_random(tools::ConformanceReport& report, Gpus& gpu, uint64_t seed) {
  for (const auto& c : tools::gpu_check_matrix()) {
    for (const auto& r : tools::run_gpu_check(gpu.grouped, c, seed++)) report.add(r);
  }
  for (const auto& c : tools::key_check_matrix()) {
    for (const auto& r : tools::run_gpu_key_check(gpu.keys, c, seed++)) report.add(r);
  }
  const TensorShape trit_shapes[] = {{2, 64, 128}, {3, 96, 64}, {2, 32, 30}};
  for (const auto& shape : trit_shapes) {
    for (TernaryScale ts : {TernaryScale::mean_abs, TernaryScale::lsq}) {
      for (const auto& r : tools::run_gpu_trit_check(gpu.grouped, shape, 32, ts, seed++)) report.add(r);
    }
  }
  for (const auto& c : tools::stp_check_matrix()) {
    for (const auto& r : tools::run_gpu_stp_check(gpu.stp, c, seed++)) report.add(r);
  }
}

void run_golden(tools::ConformanceReport& report, Gpus& gpu, const std::string& root) {
  auto ref_q = [](const QuantSpec& s, const TensorShape& sh, const std::vector<uint16_t>& in, const TensorLayout& l) {
    return reference::quantize(s, sh, in.data(), l);
  };
  auto ref_d = [](const QuantizedTensor& q, const TensorLayout& l) { return reference::dequantize(q, l); };
  auto gpu_q = [&](const QuantSpec& s, const TensorShape& sh, const std::vector<uint16_t>& in, const TensorLayout& l) {
    return gpu.grouped.quantize_host(s, sh, in, l);
  };
  auto gpu_d = [&](const QuantizedTensor& q, const TensorLayout& l) { return gpu.grouped.dequantize_host(q, l); };
  const auto gpu_keys = tools::gpu_key_impl(gpu.keys, gpu.grouped);
  const auto gpu_values = tools::gpu_value_impl(gpu.stp);
  for (const auto& dir : tools::list_golden_cases(root)) {
    const auto golden = tools::GoldenCase::load(dir);
    if (tools::golden_case_is_per_channel(golden)) {
      for (const auto& r : tools::run_per_channel_golden_case(golden, ref_q, ref_d, "reference")) report.add(r);
      for (const auto& r : tools::run_per_channel_golden_case(golden, gpu_q, gpu_d, "gpu")) report.add(r);
    } else if (tools::vidkv_case_kind(golden) != tools::VidkvCaseKind::other) {
      for (const auto& r : tools::run_vidkv_golden_case(golden, tools::reference_key_impl(),
                                                        tools::reference_value_impl(), "reference")) {
        report.add(r);
      }
      for (const auto& r : tools::run_vidkv_golden_case(golden, gpu_keys, gpu_values, "gpu")) report.add(r);
    } else {
      report.skip("golden/" + golden.name(), "kind not supported by this version");
    }
  }
}

json::Value device_json(const rt::DeviceInfo& d) {
  json::Value v = json::Value::object();
  v.set("name", d.name);
  v.set("type", std::string(rt::device_type_name(d.type)));
  v.set("driver", d.driver_name + " " + d.driver_info);
  v.set("api_version", rt::version_string(d.api_version));
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::string golden_dir, json_path;
  uint64_t seed = tools::test_seed();
  bool validation = true;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--golden") golden_dir = value();
    else if (arg == "--seed") seed = std::strtoull(value().c_str(), nullptr, 10);
    else if (arg == "--json") json_path = value();
    else if (arg == "--no-validation") validation = false;
    else if (arg == "--version") {
      std::printf("vidkv-conformance %s\n", VIDKV_VERSION_STRING);
      return 0;
    } else {
      usage();
      return 2;
    }
  }
  try {
    rt::ContextOptions options = rt::ContextOptions::from_environment();
    options.validation = validation;
    auto ctx = rt::Context::create(options);
    std::printf("vidkv-conformance %s on %s (%s, %s %s), validation %s, seed %llu\n", VIDKV_VERSION_STRING,
                ctx->info().name.c_str(), rt::device_type_name(ctx->info().type), ctx->info().driver_name.c_str(),
                ctx->info().driver_info.c_str(), validation ? "on" : "off", (unsigned long long)seed);
    Gpus gpu(ctx);
    tools::ConformanceReport report;
    run_random(report, gpu, seed);
    if (!golden_dir.empty()) run_golden(report, gpu, golden_dir);
    if (validation) {
      tools::CheckResult v{"validation_layer", "-", double(ctx->validation_message_count()),
                           ctx->validation_message_count() == 0, ""};
      if (!v.passed) v.detail = ctx->validation_messages().front().text;
      report.add(v);
    }
    if (!json_path.empty()) report.write_json(json_path, device_json(ctx->info()), seed);
    std::printf("%zu passed, %zu failed\n", report.passed(), report.failed());
    return report.failed() == 0 ? 0 : 1;
  } catch (const Error& e) {
    std::fprintf(stderr, "vidkv-conformance: %s\n", e.what());
    return 1;
  }
}
