#include "common/golden_checks.hpp"

#include <cmath>
#include <cstdio>
#include <exception>

#include "vidkv/error.hpp"
#include "vidkv/fp16.hpp"

namespace vidkv::tools {
namespace {

using fp16::to_float;

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

std::string half_text(uint16_t h) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.9g (0x%04x)", double(to_float(h)), unsigned(h));
  return buf;
}

double half_diff(uint16_t a, uint16_t b) {
  const double d = std::fabs(double(to_float(a)) - double(to_float(b)));
  return std::isnan(d) ? INFINITY : d;
}

// Bit-exact comparison of two fp16 arrays; max_error is the largest absolute difference.
CheckResult compare_halves(const std::string& name, const std::string& shape,
                           const std::vector<uint16_t>& expected,
                           const std::vector<uint16_t>& got) {
  CheckResult r{name, shape, 0.0, false, ""};
  if (expected.size() != got.size()) {
    r.detail = "size " + std::to_string(got.size()) + ", expected " +
               std::to_string(expected.size());
    r.max_error = INFINITY;
    return r;
  }
  size_t bad = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    if (expected[i] == got[i]) continue;
    if (bad++ == 0) {
      r.detail = "first mismatch at index " + std::to_string(i) + ": expected " +
                 half_text(expected[i]) + ", got " + half_text(got[i]);
    }
    r.max_error = std::max(r.max_error, half_diff(expected[i], got[i]));
  }
  r.passed = bad == 0;
  r.detail = r.passed ? std::to_string(expected.size()) + " values bit-exact"
                      : std::to_string(bad) + " of " + std::to_string(expected.size()) +
                            " differ; " + r.detail;
  return r;
}

// Bit-exact comparison of packed code words; max_error is the largest difference of one code.
CheckResult compare_codes(const std::string& name, const std::string& shape,
                          const std::vector<int32_t>& expected, const std::vector<uint32_t>& got,
                          uint32_t field_bits) {
  CheckResult r{name, shape, 0.0, false, ""};
  if (expected.size() != got.size()) {
    r.detail = "size " + std::to_string(got.size()) + " words, expected " +
               std::to_string(expected.size());
    r.max_error = INFINITY;
    return r;
  }
  size_t bad = 0;
  const uint32_t mask = (1u << field_bits) - 1u;
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto e = uint32_t(expected[i]);
    if (e == got[i]) continue;
    if (bad++ == 0) {
      r.detail = "first mismatch at word " + std::to_string(i) + ": expected " + hex(e) +
                 ", got " + hex(got[i]);
    }
    for (uint32_t s = 0; s < 32; s += field_bits) {
      const double d = std::fabs(double((e >> s) & mask) - double((got[i] >> s) & mask));
      r.max_error = std::max(r.max_error, d);
    }
  }
  r.passed = bad == 0;
  r.detail = r.passed ? std::to_string(expected.size()) + " words bit-exact"
                      : std::to_string(bad) + " of " + std::to_string(expected.size()) +
                            " words differ; " + r.detail;
  return r;
}

uint64_t param_uint(const json::Value& params, const char* key) {
  try {
    return params.at(key).as_uint();
  } catch (const Error& e) {
    throw Error(ErrorCode::corrupt_data, std::string("golden param ") + key + ": " + e.what());
  }
}

}  // namespace

QuantSpec golden_case_spec(const GoldenCase& c) {
  const json::Value& p = c.params();
  const json::Value* bits = p.find("bits");
  if (bits == nullptr || !bits->is_number()) {
    throw Error(ErrorCode::corrupt_data, "golden case " + c.name() + " has no numeric bits");
  }
  QuantSpec spec;
  const double b = bits->as_number();
  if (std::fabs(b - 1.58) < 1e-9) spec.bits = QuantBits::b1_58;
  else if (b == 1) spec.bits = QuantBits::b1;
  else if (b == 2) spec.bits = QuantBits::b2;
  else if (b == 4) spec.bits = QuantBits::b4;
  else if (b == 8) spec.bits = QuantBits::b8;
  else throw Error(ErrorCode::corrupt_data, "golden case " + c.name() + " has bits " +
                                                std::to_string(b));
  spec.axis = QuantAxis::channel;
  spec.group_size = uint32_t(param_uint(p, "group_size"));
  spec.ternary_scale = TernaryScale::mean_abs;  // the paper's and the original's scale
  return spec;
}

bool golden_case_is_per_channel(const GoldenCase& c) {
  const json::Value& p = c.params();
  const json::Value* bits = p.find("bits");
  const json::Value* axis = p.find("axis");
  if (!bits || !axis || !bits->is_number() || !axis->is_number() || axis->as_number() != -1 ||
      !p.contains("D") || p.contains("D_subset") || c.has("fft_coeffs")) {
    return false;
  }
  for (const char* a : {"input", "code", "scale", "mn", "dequant_original", "dequant_corrected"}) {
    if (!c.has(a)) return false;
  }
  const double b = bits->as_number();
  return b == 1 || std::fabs(b - 1.58) < 1e-9 || b == 2 || b == 4 || b == 8;
}

std::vector<CheckResult> run_per_channel_golden_case(const GoldenCase& c,
                                                     const QuantizeFn& quantize,
                                                     const DequantizeFn& dequantize,
                                                     const std::string& impl_name) {
  const std::string prefix = impl_name + "/" + c.name() + "/";
  const json::Value& p = c.params();
  const QuantSpec spec = golden_case_spec(c);
  if (param_uint(p, "B") != 1) {
    throw Error(ErrorCode::corrupt_data, "golden case " + c.name() + " has B != 1");
  }
  const TensorShape shape{uint32_t(param_uint(p, "H")), uint32_t(param_uint(p, "T")),
                          uint32_t(param_uint(p, "D"))};
  const std::string shape_text = "1x" + std::to_string(shape.heads) + "x" +
                                 std::to_string(shape.tokens) + "x" + std::to_string(shape.dim);
  const GoldenArray input = c.array("input");
  if (input.elements() != shape.elements()) {
    throw Error(ErrorCode::corrupt_data, "golden case " + c.name() + ": input holds " +
                                             std::to_string(input.elements()) +
                                             " values, params say " + shape_text);
  }
  const TensorLayout layout = TensorLayout::htd(shape);
  QuantizedTensor q;
  std::vector<uint16_t> ours;
  try {
    q = quantize(spec, shape, input.as_u16(), layout);
    ours = dequantize(q, layout);
  } catch (const std::exception& e) {
    return {CheckResult{prefix + "run", shape_text, INFINITY, false, e.what()}};
  }

  std::vector<CheckResult> out;
  out.push_back(compare_codes(prefix + "codes", shape_text, c.array("code").as_i32(), q.codes,
                              field_bits(spec.bits)));
  out.push_back(compare_halves(prefix + "scales", shape_text, c.array("scale").as_u16(), q.scales));
  out.push_back(compare_halves(prefix + "mins", shape_text, c.array("mn").as_u16(), q.mins));
  if (c.has("codes_unpacked") && out[0].passed) {
    // The original's own unpacking ([h][c][t], stored field values) against our code_at.
    const std::vector<uint8_t> unpacked = c.array("codes_unpacked").as_u8();
    CheckResult r{prefix + "codes_unpacked", shape_text, 0.0, true, ""};
    const int32_t offset = spec.bits == QuantBits::b1_58 ? 1 : 0;  // trits stored as code + 1
    for (uint32_t h = 0; h < shape.heads && r.passed; ++h) {
      for (uint32_t d = 0; d < shape.dim && r.passed; ++d) {
        for (uint32_t t = 0; t < shape.tokens && r.passed; ++t) {
          const size_t i = (size_t(h) * shape.dim + d) * shape.tokens + t;
          const int32_t got = reference::code_at(q, h, t, d) + offset;
          if (got != unpacked.at(i)) {
            r.passed = false;
            r.max_error = std::fabs(double(got) - unpacked[i]);
            r.detail = "first mismatch at index " + std::to_string(i) + ": expected " +
                       std::to_string(unpacked[i]) + ", got " + std::to_string(got);
          }
        }
      }
    }
    if (r.passed) r.detail = std::to_string(unpacked.size()) + " codes equal";
    out.push_back(r);
  }
  out.push_back(compare_halves(prefix + "dequant_corrected", shape_text,
                               c.array("dequant_corrected").as_u16(), ours));
  const std::vector<uint16_t> original = c.array("dequant_original").as_u16();
  if (spec.bits != QuantBits::b1 && spec.bits != QuantBits::b1_58) {
    out.push_back(compare_halves(prefix + "dequant_original_equal", shape_text, original, ours));
    return out;
  }

  // 1 and 1.58 bit: where must the original be wrong, and what must it hold there?
  CheckResult r{prefix + "dequant_original_differs", shape_text, 0.0, false, ""};
  if (original.size() != ours.size()) {
    r.detail = "size " + std::to_string(ours.size()) + ", original " +
               std::to_string(original.size());
    out.push_back(r);
    return out;
  }
  const PackedSizes ps = packed_sizes(spec, shape);
  size_t predicted = 0, unexpected = 0;
  for (uint32_t h = 0; h < shape.heads; ++h) {
    for (uint32_t t = 0; t < shape.tokens; ++t) {
      for (uint32_t d = 0; d < shape.dim; ++d) {
        const size_t i = (size_t(h) * shape.tokens + t) * shape.dim + d;
        const int32_t code = reference::code_at(q, h, t, d);
        const float s = to_float(q.scales[(size_t(h) * shape.dim + d) * ps.groups_per_row +
                                          t / spec.group_size]);
        // The original's faulty value: 1-bit q*s + 0 (so 0 for q = 0); 1.58-bit q - 1 unscaled.
        float faulty;
        bool wrong;
        if (spec.bits == QuantBits::b1) {
          faulty = code ? s : 0.0f;
          wrong = code == 0 && s != 0.0f;
        } else {
          faulty = float(code);
          wrong = to_float(fp16::from_float(float(code) * s)) != faulty;
        }
        const bool differs = to_float(ours[i]) != to_float(original[i]);
        const bool original_ok = to_float(original[i]) == faulty;
        predicted += wrong;
        r.max_error = std::max(r.max_error, half_diff(ours[i], original[i]));
        if (differs != wrong || !original_ok) {
          if (unexpected++ == 0) {
            r.detail = "first unexpected element at index " + std::to_string(i) + ": ours " +
                       half_text(ours[i]) + ", original " + half_text(original[i]) +
                       ", code " + std::to_string(code) + ", scale " + std::to_string(s) +
                       (wrong ? " (predicted to differ)" : " (predicted equal)");
          }
        }
      }
    }
  }
  r.passed = unexpected == 0;
  r.detail = r.passed ? "differs at exactly the " + std::to_string(predicted) + " of " +
                            std::to_string(ours.size()) + " elements predicted by section 3"
                      : std::to_string(unexpected) + " unexpected elements; " + r.detail;
  out.push_back(r);
  return out;
}

}  // namespace vidkv::tools
