// vidkv-info: every Vulkan device vidkv can see, with what matters for its shaders.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>

#include "common/json.hpp"
#include "gpu_model.hpp"
#include "pipelines.hpp"
#include "vidkv/error.hpp"
#include "vidkv/runtime/device_info.hpp"
#include "vidkv/version.hpp"

using namespace vidkv;

static json::Value to_json(const rt::DeviceInfo& d) {
  json::Value o = json::Value::object();
  o.set("index", double(d.index));
  o.set("name", d.name);
  o.set("type", std::string(rt::device_type_name(d.type)));
  o.set("api_version", rt::version_string(d.api_version));
  o.set("driver_version", double(d.driver_version));
  o.set("driver", d.driver_name);
  o.set("driver_info", d.driver_info);
  o.set("vendor_id", double(d.vendor_id));
  o.set("subgroup_size", double(d.subgroup_size));
  o.set("min_subgroup_size", double(d.min_subgroup_size));
  o.set("max_subgroup_size", double(d.max_subgroup_size));
  o.set("shader_float16", d.shader_float16);
  o.set("shader_int8", d.shader_int8);
  o.set("storage_buffer_16bit", d.storage_buffer_16bit);
  o.set("storage_buffer_8bit", d.storage_buffer_8bit);
  o.set("push_descriptor", d.push_descriptor);
  o.set("max_shared_memory", double(d.max_shared_memory));
  o.set("max_workgroup_invocations", double(d.max_workgroup_invocations));
  o.set("timestamp_period_ns", double(d.timestamp_period_ns));
  o.set("device_local_bytes", double(d.device_local_bytes));
  o.set("compute_units", double(d.compute_units));
  return o;
}

// --pipelines: one context on the chosen device that captures what the driver reports of each
// pipeline; nothing is allocated or submitted, so RADV's null devices work.
static int show_pipelines(bool as_json, const std::string& selector, const std::string& dump_dir,
                          uint32_t group_size, uint32_t head_dim) {
  rt::ContextOptions options = rt::ContextOptions::from_environment();
  if (!selector.empty()) options.device_selector = selector;
  options.capture_pipeline_statistics = true;
  // A device without VK_KHR_pipeline_executable_properties (lavapipe) still lists its pipelines.
  std::shared_ptr<rt::Context> context;
  std::string no_statistics;
  try {
    context = rt::Context::create(options);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::missing_feature) throw;
    no_statistics = e.what();
    options.capture_pipeline_statistics = false;
    context = rt::Context::create(options);
  }
  AttentionGeometry geometry = info::benchmark_geometry();
  const bool model_geometry = group_size == 32 && (head_dim == 0 || head_dim == geometry.dim);
  if (head_dim != 0) geometry.dim = head_dim;
  const auto reports = info::collect_pipelines(context, geometry, group_size);
  // Each pipeline's disassembly as DIR/<label>.s (what the model's loop table is read from).
  if (!dump_dir.empty()) {
    for (const auto& r : reports) {
      const std::string path = dump_dir + "/" + r.label + ".s";
      std::ofstream out(path);
      out << info::assembly_text(r.record);
      if (!out) throw Error(ErrorCode::io_error, "cannot write " + path);
    }
  }
  // The model's loop trip tables are written for groups of 32 and the benchmark's head_dim: other
  // geometries get the pipeline table only.
  info::ModelResult model;
  if (model_geometry) model = info::run_model(context->info(), reports, geometry);
  else model.note = "the model's loop tables are written for groups of 32 at head_dim 128";
  const size_t messages = context->validation_message_count();
  if (as_json) {
    json::Value doc = json::Value::object();
    doc.set("device", to_json(context->info()));
    if (!no_statistics.empty()) doc.set("statistics_unavailable", no_statistics);
    json::Value list = json::Value::array();
    for (const auto& r : reports) list.push_back(info::pipeline_json(r));
    doc.set("pipelines", list);
    doc.set("model", info::model_json(model));
    doc.set("kernels", info::kernels_json(model));
    if (!model.note.empty()) doc.set("model_note", model.note);
    std::cout << json::write(doc, true) << "\n";
  } else {
    info::print_pipelines(context->info(), reports);
    if (!no_statistics.empty()) std::printf("no statistics: %s\n", no_statistics.c_str());
    if (model_geometry) info::print_model(model);
  }
  if (messages > 0) {
    std::fprintf(stderr, "vidkv-info: %zu validation message(s), the first: %s\n", messages,
                 context->validation_messages().front().text.c_str());
    return 1;
  }
  return 0;
}

int main(int argc, char** argv) {
  bool as_json = false, pipelines = false;
  std::string selector, dump_dir;
  uint32_t group_size = 32, head_dim = 0;  // head_dim 0: the benchmark's
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--json") == 0) {
      as_json = true;
    } else if (std::strcmp(argv[i], "--pipelines") == 0) {
      pipelines = true;
    } else if (std::strcmp(argv[i], "--dump-asm") == 0 && i + 1 < argc) {
      dump_dir = argv[++i];
    } else if (std::strcmp(argv[i], "--group") == 0 && i + 1 < argc) {
      group_size = uint32_t(std::strtoul(argv[++i], nullptr, 10));
      if (group_size != 32 && group_size != 64 && group_size != 128) {
        std::fprintf(stderr, "vidkv-info: --group takes 32, 64 or 128\n");
        return 2;
      }
    } else if (std::strcmp(argv[i], "--head-dim") == 0 && i + 1 < argc) {
      head_dim = uint32_t(std::strtoul(argv[++i], nullptr, 10));
      if (head_dim < 64 || head_dim > 256 || head_dim % 16 != 0) {
        std::fprintf(stderr, "vidkv-info: --head-dim takes a multiple of 16 from 64 to 256\n");
        return 2;
      }
    } else if (std::strcmp(argv[i], "--device") == 0 && i + 1 < argc) {
      selector = argv[++i];
    } else if (std::strcmp(argv[i], "--version") == 0) {
      std::printf("vidkv-info %s\n", VIDKV_VERSION_STRING);
      return 0;
    } else {
      std::fprintf(stderr, "usage: vidkv-info [--json] [--version] [--pipelines [--device SELECTOR] [--dump-asm DIR] [--group 32|64|128] [--head-dim D]]\n");
      return 2;
    }
  }
  try {
    if (pipelines) return show_pipelines(as_json, selector, dump_dir, group_size, head_dim);
    const auto devices = rt::enumerate_devices();
    if (as_json) {
      json::Value list = json::Value::array();
      for (const auto& d : devices) list.push_back(to_json(d));
      std::cout << json::write(list, true) << "\n";
      return 0;
    }
    std::printf("vidkv %s: %zu Vulkan device(s)\n", VIDKV_VERSION_STRING, devices.size());
    for (const auto& d : devices) {
      std::printf("[%u] %s (%s)\n", d.index, d.name.c_str(), rt::device_type_name(d.type));
      std::printf("    Vulkan %s, driver %s %s\n", rt::version_string(d.api_version).c_str(), d.driver_name.c_str(),
                  d.driver_info.c_str());
      std::printf("    subgroup %u (range %u..%u%s)\n", d.subgroup_size, d.min_subgroup_size, d.max_subgroup_size,
                  d.subgroup_size_control ? ", size control" : "");
      std::printf("    shaderFloat16 %s, shaderInt8 %s, 16-bit storage %s, 8-bit storage %s, push descriptors %s\n",
                  d.shader_float16 ? "yes" : "no", d.shader_int8 ? "yes" : "no",
                  d.storage_buffer_16bit ? "yes" : "no", d.storage_buffer_8bit ? "yes" : "no",
                  d.push_descriptor ? "yes" : "no");
      std::printf("    shared memory %u B, workgroup %u invocations (%u x %u x %u), timestamp period %.3f ns\n",
                  d.max_shared_memory, d.max_workgroup_invocations, d.max_workgroup_size[0], d.max_workgroup_size[1],
                  d.max_workgroup_size[2], d.timestamp_period_ns);
      std::printf("    device-local memory %.1f GiB\n", double(d.device_local_bytes) / (1ull << 30));
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "vidkv-info: %s\n", e.what());
    return 1;
  }
  return 0;
}
