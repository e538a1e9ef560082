// vidkv-conformance: every shader against the CPU reference on the selected device (VIDKV_DEVICE),
// with the validation layer on, over a fixed matrix of shapes and fresh random inputs (grouped
// quantizers, VidKV keys with VkFFT, trit packing, STP, decode attention, the cache runtime end to
// end); with --golden DIR, every golden case of a kind it supports (per-channel, dynamic keys, FFT
// keys, STP) through the reference and the GPU.
//
// The matrix runs in passes, each on its own context: one per power-of-two subgroup size the
// device allows (VK_EXT_subgroup_size_control; the driver's default where there is no control),
// then one with shaderFloat16, shaderInt8 and 16/8-bit storage switched off, as on a device
// without them. Each pass also checks that every shaders/*.comp the device uses ran (the
// subgroup-of-8 attention shaders only where GpuAttention takes them: CPU devices with subgroups of
// exactly 8; elsewhere they are listed as not used on this device, and running them fails) and
// that no module declares a capability its context left off. One line per check, labelled with its pass, then
// "N passed, N failed"; exit status 1 on any failure, 77 when the asked subgroup size is not
// available on the device (nothing run), 2 on bad usage.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common/attention_checks.hpp"
#include "common/cache_checks.hpp"
#include "common/golden.hpp"
#include "common/golden_checks.hpp"
#include "common/golden_checks_vidkv.hpp"
#include "common/gpu_checks.hpp"
#include "common/gpu_checks_coverage.hpp"
#include "common/gpu_golden_impls.hpp"
#include "common/gpu_key_checks.hpp"
#include "common/json.hpp"
#include "common/random_data.hpp"
#include "conformance/report.hpp"
#include "vidkv/error.hpp"
#include "vidkv/gpu_attention.hpp"
#include "vidkv/gpu_quantizer.hpp"
#include "vidkv/reference.hpp"
#include "vidkv/version.hpp"

using namespace vidkv;

namespace {

constexpr int kExitUnsupported = 77;  // ctest's conventional "skipped"

void usage() {
  std::fprintf(stderr,
               "usage: vidkv-conformance [--golden DIR] [--seed N] [--json FILE] [--no-validation]\n"
               "                         [--subgroup-size N] [--features on|off|both] [--quick] [--filter TEXT]\n"
               "                         [--version]\n"
               "  --golden DIR        also run every golden case under DIR (default: none)\n"
               "  --seed N            seed of the random inputs (default: fresh, printed)\n"
               "  --json FILE         write every check, and each pass's features and pipelines, as JSON\n"
               "  --no-validation     run without VK_LAYER_KHRONOS_validation\n"
               "  --subgroup-size N   run every pass with subgroup size N (exit 77 if the device cannot);\n"
               "                      default: one pass per power of two the device allows\n"
               "  --features WHICH    passes with shaderFloat16/shaderInt8 on, off, or both (default)\n"
               "  --quick             the driver's subgroup size only, instead of one pass per size\n"
               "  --filter TEXT       only the cases whose name contains TEXT (no coverage check)\n"
               "  VIDKV_DEVICE        device index or name substring\n");
}

struct Options {
  std::string golden_dir, json_path;
  uint64_t seed = 0;
  bool validation = true;
  uint32_t subgroup_size = 0;  // 0: per allowed size (or the driver's with --quick)
  bool features_on = true, features_off = true;
  bool quick = false;
  std::string filter;  // only the cases whose name contains it
};

struct Pass {
  std::string label;
  uint32_t required_subgroup_size = 0;
  bool features_off = false;
};

struct Gpus {
  GpuQuantizer grouped;
  GpuKeyQuantizer keys;
  GpuStp stp;
  GpuAttention attention;
  explicit Gpus(const std::shared_ptr<rt::Context>& ctx) : grouped(ctx), keys(ctx), stp(ctx), attention(ctx) {}
};

// Runs one case's checks; a vidkv::Error thrown on the way is that case's failed check, and the
// run goes on.
template <typename F>
void run_case(tools::ConformanceReport& report, const Options& o, const std::string& name, F&& checks) {
  if (!o.filter.empty() && name.find(o.filter) == std::string::npos) return;
  try {
    for (const auto& r : checks()) report.add(r);
  } catch (const Error& e) {
    report.add(tools::CheckResult{name + "/no_error", "-", 0.0, false, e.what()});
  }
}

void run_random(tools::ConformanceReport& report, const Options& o, Gpus& gpu,
                const std::shared_ptr<rt::Context>& ctx) {
  uint64_t seed = o.seed;
  for (const auto& c : tools::gpu_check_matrix()) {
    run_case(report, o, tools::gpu_case_name(c), [&] { return tools::run_gpu_check(gpu.grouped, c, seed); });
    ++seed;
  }
  for (const auto& c : tools::key_check_matrix()) {
    run_case(report, o, tools::key_case_name(c), [&] { return tools::run_gpu_key_check(gpu.keys, c, seed); });
    ++seed;
  }
  const TensorShape trit_shapes[] = {{2, 64, 128}, {3, 96, 64}, {2, 32, 30}};
  for (const auto& shape : trit_shapes) {
    for (TernaryScale ts : {TernaryScale::mean_abs, TernaryScale::lsq}) {
      run_case(report, o, "trits_" + std::string(ternary_scale_name(ts)),
               [&] { return tools::run_gpu_trit_check(gpu.grouped, shape, 32, ts, seed); });
      ++seed;
    }
  }
  for (const auto& c : tools::stp_check_matrix()) {
    run_case(report, o, "stp_n" + std::to_string(c.visual), [&] { return tools::run_gpu_stp_check(gpu.stp, c, seed); });
    ++seed;
  }
  for (const auto& c : tools::attention_check_matrix()) {
    run_case(report, o, tools::attention_case_name(c),
             [&] { return tools::run_attention_check(gpu.attention, c, seed); });
    ++seed;
  }
  for (const auto& c : tools::cache_check_matrix()) {
    run_case(report, o, tools::cache_case_name(c), [&] {
      auto outcome = tools::run_cache_check(ctx, gpu.keys, c, seed);
      for (const auto& [name, why] : outcome.skipped) report.skip(name, why);
      return outcome.checks;
    });
    ++seed;
  }
}

void run_golden(tools::ConformanceReport& report, const Options& o, Gpus& gpu, bool with_reference) {
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
  for (const auto& dir : tools::list_golden_cases(o.golden_dir)) {
    const auto golden = tools::GoldenCase::load(dir);
    const std::string name = "golden/" + golden.name();
    run_case(report, o, name, [&] {
      std::vector<tools::CheckResult> results;
      auto add = [&](const std::vector<tools::CheckResult>& more) {
        results.insert(results.end(), more.begin(), more.end());
      };
      if (tools::golden_case_is_per_channel(golden)) {
        if (with_reference) add(tools::run_per_channel_golden_case(golden, ref_q, ref_d, "reference"));
        add(tools::run_per_channel_golden_case(golden, gpu_q, gpu_d, "gpu"));
      } else if (tools::vidkv_case_kind(golden) != tools::VidkvCaseKind::other) {
        if (with_reference) {
          add(tools::run_vidkv_golden_case(golden, tools::reference_key_impl(), tools::reference_value_impl(),
                                           "reference"));
        }
        add(tools::run_vidkv_golden_case(golden, gpu_keys, gpu_values, "gpu"));
      } else {
        report.skip(name, "kind not supported by this version");
      }
      return results;
    });
  }
}

json::Value device_json(const rt::DeviceInfo& d) {
  json::Value v = json::Value::object();
  v.set("name", d.name);
  v.set("type", std::string(rt::device_type_name(d.type)));
  v.set("driver", d.driver_name + " " + d.driver_info);
  v.set("api_version", rt::version_string(d.api_version));
  v.set("subgroup_size", d.subgroup_size);
  v.set("min_subgroup_size", d.min_subgroup_size);
  v.set("max_subgroup_size", d.max_subgroup_size);
  v.set("subgroup_size_control", d.subgroup_size_control);
  v.set("shader_float16", d.shader_float16);
  v.set("shader_int8", d.shader_int8);
  return v;
}

bool is_power_of_two(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

// The passes for this device: per allowed subgroup size with the features on, then one with them off.
std::vector<Pass> plan_passes(const Options& o, const rt::DeviceInfo& device) {
  std::vector<uint32_t> sizes;
  if (o.subgroup_size != 0) {
    sizes.push_back(o.subgroup_size);
  } else if (o.quick || !device.subgroup_size_control) {
    sizes.push_back(0);
  } else {
    for (uint32_t s = device.min_subgroup_size; s <= device.max_subgroup_size && s != 0; s *= 2) {
      if (is_power_of_two(s)) sizes.push_back(s);
    }
    if (sizes.empty()) sizes.push_back(0);
  }
  auto size_label = [](uint32_t s) { return s ? "sg" + std::to_string(s) : std::string("default"); };
  std::vector<Pass> passes;
  if (o.features_on) {
    for (uint32_t s : sizes) passes.push_back({size_label(s), s, false});
  }
  if (o.features_off) {
    std::string label = "no-f16-i8";
    if (o.subgroup_size) label.append("-").append(size_label(o.subgroup_size));
    passes.push_back({label, o.subgroup_size, true});
  }
  return passes;
}

std::shared_ptr<rt::Context> pass_context(const rt::ContextOptions& base, const Pass& pass) {
  rt::ContextOptions options = base;
  options.required_subgroup_size = pass.required_subgroup_size;
  options.disable_float16_int8 = pass.features_off;
  return rt::Context::create(options);
}

void run_pass(tools::ConformanceReport& report, const Options& o, const Pass& pass,
              const std::shared_ptr<rt::Context>& ctx, bool first) {
  const std::string features = tools::features_line(ctx->enabled_features(), ctx->effective_subgroup_size());
  // The attention shaders this context takes by default (the matrix also forces the portable ones).
  const std::string attention_path = GpuAttention::subgroup8_default(*ctx) ? "subgroup8" : "portable";
  std::printf("== pass %s: %s; attention path %s\n", pass.label.c_str(), features.c_str(), attention_path.c_str());
  json::Value info = json::Value::object();
  info.set("features", tools::features_json(ctx->enabled_features(), ctx->effective_subgroup_size()));
  info.set("attention_path", attention_path);
  report.begin_pass(pass.label, info);
  {
    Gpus gpu(ctx);
    run_random(report, o, gpu, ctx);
    // The reference's own golden checks do not depend on the pass: the first pass runs them.
    if (!o.golden_dir.empty()) run_golden(report, o, gpu, first);
  }
  const auto pipelines = ctx->pipeline_records();
  if (o.filter.empty()) {
    const auto unused = tools::shaders_unused_on(*ctx);
    report.add(tools::shader_coverage_check("coverage/shaders", pipelines, unused));
    for (const auto& u : unused) report.skip("coverage/shaders/" + u.name, "not used on this device: " + u.why);
  } else {
    report.skip("coverage/shaders", "--filter runs part of the matrix");
  }
  report.add(tools::spirv_capability_check("coverage/spirv_capabilities", pipelines, ctx->enabled_features()));
  if (o.validation) {
    tools::CheckResult v{"validation_layer", "-", double(ctx->validation_message_count()),
                         ctx->validation_message_count() == 0, ""};
    if (!v.passed) v.detail = ctx->validation_messages().front().text;
    report.add(v);
  }
  json::Value done = json::Value::object();
  done.set("pipelines", tools::pipelines_json(pipelines));
  report.end_pass(done);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.seed = tools::test_seed();
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--golden") o.golden_dir = value();
    else if (arg == "--seed") o.seed = std::strtoull(value().c_str(), nullptr, 10);
    else if (arg == "--json") o.json_path = value();
    else if (arg == "--no-validation") o.validation = false;
    else if (arg == "--quick") o.quick = true;
    else if (arg == "--filter") o.filter = value();
    else if (arg == "--subgroup-size") {
      const std::string v = value();
      char* end = nullptr;
      const unsigned long n = std::strtoul(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || !is_power_of_two(uint32_t(n)) || n > 1024) {
        std::fprintf(stderr, "vidkv-conformance: --subgroup-size %s is not a power of two up to 1024\n", v.c_str());
        return 2;
      }
      o.subgroup_size = uint32_t(n);
    } else if (arg == "--features") {
      const std::string v = value();
      if (v != "on" && v != "off" && v != "both") {
        usage();
        return 2;
      }
      o.features_on = v != "off";
      o.features_off = v != "on";
    } else if (arg == "--version") {
      std::printf("vidkv-conformance %s\n", VIDKV_VERSION_STRING);
      return 0;
    } else {
      usage();
      return 2;
    }
  }
  try {
    rt::ContextOptions base = rt::ContextOptions::from_environment();
    base.validation = o.validation;
    // The device's subgroup sizes decide the passes; a plain context tells them.
    rt::DeviceInfo device;
    {
      rt::ContextOptions probe = base;
      probe.validation = false;
      device = rt::Context::create(probe)->info();
    }
    std::printf("vidkv-conformance %s on %s (%s, %s %s), subgroup sizes %u..%u%s, validation %s, seed %llu\n",
                VIDKV_VERSION_STRING, device.name.c_str(), rt::device_type_name(device.type),
                device.driver_name.c_str(), device.driver_info.c_str(), device.min_subgroup_size,
                device.max_subgroup_size, device.subgroup_size_control ? " (size control)" : " (no size control)",
                o.validation ? "on" : "off", (unsigned long long)o.seed);
    if (o.subgroup_size != 0 &&
        (!device.subgroup_size_control || o.subgroup_size < device.min_subgroup_size ||
         o.subgroup_size > device.max_subgroup_size)) {
      std::printf("SKIP subgroup size %u: %s allows %u..%u%s\n", o.subgroup_size, device.name.c_str(),
                  device.min_subgroup_size, device.max_subgroup_size,
                  device.subgroup_size_control ? "" : " and has no VK_EXT_subgroup_size_control");
      return kExitUnsupported;
    }
    tools::ConformanceReport report;
    bool first = true, replaced = false;
    for (Pass pass : plan_passes(o, device)) {
      std::shared_ptr<rt::Context> ctx;
      try {
        ctx = pass_context(base, pass);
      } catch (const Error& e) {
        // The device lists the size but will not require it of compute pipelines
        // (subgroupSizeControl or requiredSubgroupSizeStages): an asked size is skipped as a whole;
        // otherwise the driver's size stands in for the refused ones, once.
        if (pass.required_subgroup_size == 0 || e.code() != ErrorCode::missing_feature) throw;
        if (o.subgroup_size != 0) {
          std::printf("SKIP subgroup size %u: %s\n", o.subgroup_size, e.what());
          return kExitUnsupported;
        }
        report.skip("pass " + pass.label, e.what());
        if (replaced) continue;
        replaced = true;
        pass = {"default", 0, pass.features_off};
        ctx = pass_context(base, pass);
      }
      run_pass(report, o, pass, ctx, first);
      first = false;
    }
    if (!o.json_path.empty()) report.write_json(o.json_path, device_json(device), o.seed);
    std::printf("%zu passed, %zu failed\n", report.passed(), report.failed());
    return report.failed() == 0 ? 0 : 1;
  } catch (const Error& e) {
    std::fprintf(stderr, "vidkv-conformance: %s\n", e.what());
    return 1;
  }
}
