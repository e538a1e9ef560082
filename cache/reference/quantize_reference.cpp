// CPU reference quantizer (see reference.hpp for the exact arithmetic). Deliberately plain: one
// group at a time, every fp16 operation spelled out as "compute in fp32, round once to half".
#include "vidkv/reference.hpp"

#include <cmath>
#include <string>
#include <vector>

#include "vidkv/error.hpp"
#include "vidkv/fp16.hpp"

namespace vidkv::reference {
namespace {

using fp16::from_float;
using fp16::to_float;

constexpr uint16_t kHalfMinusOne = 0xbc00u;  // -1.0, what the original stores as 1.58-bit "mn"

std::string position(uint32_t h, uint32_t t, uint32_t d) {
  return "(head " + std::to_string(h) + ", token " + std::to_string(t) + ", channel " +
         std::to_string(d) + ")";
}

// Maps (row, k) of the packed arrays to (head, token, channel): along a row the grouped axis runs.
struct RowMap {
  bool by_channel;
  uint32_t tokens, dim;
  void at(uint64_t row, uint32_t k, uint32_t& h, uint32_t& t, uint32_t& d) const {
    if (by_channel) {
      h = uint32_t(row / dim), d = uint32_t(row % dim), t = k;
    } else {
      h = uint32_t(row / tokens), t = uint32_t(row % tokens), d = k;
    }
  }
};

RowMap row_map(const QuantSpec& spec, const TensorShape& shape) {
  return {spec.axis == QuantAxis::channel, shape.tokens, shape.dim};
}

uint64_t index_of(const TensorLayout& l, uint32_t h, uint32_t t, uint32_t d) {
  return h * l.head_stride + t * l.token_stride + d;
}

// roundEven of a value already clamped to [0, max_code]: ties go to the even integer.
uint32_t round_half_even(float v) {
  const float fl = std::floor(v);
  const float frac = v - fl;  // exact for |v| < 2^23
  uint32_t r = uint32_t(fl);
  if (frac > 0.5f || (frac == 0.5f && (r & 1u))) ++r;
  return r;
}

// Orders halves by value with -0 below +0, so min/max of a group never depend on scan order.
bool half_less(uint16_t a, uint16_t b) {
  const float fa = to_float(a), fb = to_float(b);
  if (fa != fb) return fa < fb;
  return (a & 0x8000u) && !(b & 0x8000u);
}

uint16_t decode_asym(uint32_t q, uint16_t s, uint16_t mn) {
  return from_float(to_float(from_float(float(q) * to_float(s))) + to_float(mn));
}

// fp32 sum of |x| in increasing position order (the authors' accumulation type).
float abs_sum(const std::vector<uint16_t>& x) {
  float sum = 0.0f;
  for (uint16_t v : x) sum += std::fabs(to_float(v));
  return sum;
}

struct GroupResult {
  std::vector<uint32_t> fields;  // stored field values
  uint16_t scale = 0, min = 0;
};

GroupResult quantize_group(const QuantSpec& spec, const std::vector<uint16_t>& x,
                           const std::string& where) {
  GroupResult g;
  g.fields.assign(x.size(), 0);
  const float n = float(x.size());
  if (spec.bits == QuantBits::b1) {
    g.scale = fp16::divide_round(abs_sum(x), n);
    g.min = 0;
    for (size_t i = 0; i < x.size(); ++i) g.fields[i] = to_float(x[i]) >= 0.0f ? 1u : 0u;
    return g;
  }
  if (spec.bits == QuantBits::b1_58) {
    const uint16_t m = fp16::divide_round(abs_sum(x), n);
    const float t = to_float(from_float(0.5f * to_float(m)));
    float nz_sum = 0.0f;
    uint32_t nz = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const float v = to_float(x[i]);
      const int code = v > t ? 1 : (v < -t ? -1 : 0);
      g.fields[i] = uint32_t(code + 1);
      if (code != 0) nz_sum += std::fabs(v), ++nz;
    }
    const bool lsq = spec.ternary_scale == TernaryScale::lsq && nz > 0;
    g.scale = lsq ? fp16::divide_round(nz_sum, float(nz)) : m;
    g.min = kHalfMinusOne;
    return g;
  }
  const uint32_t maxc = max_code(spec.bits);
  uint16_t mn = x[0], mx = x[0];
  for (uint16_t v : x) {
    if (half_less(v, mn)) mn = v;
    if (half_less(mx, v)) mx = v;
  }
  const uint16_t range = from_float(to_float(mx) - to_float(mn));
  // Tensor / scalar in the authors' code is a multiplication by the fp32 reciprocal.
  const uint16_t s = from_float(to_float(range) * (1.0f / float(maxc)));
  if (!fp16::is_finite(range) || !fp16::is_finite(decode_asym(maxc, s, mn))) {
    throw Error(ErrorCode::invalid_argument,
                "group " + where + " has range max - min = " +
                    std::to_string(double(to_float(mx)) - double(to_float(mn))) +
                    ", too close to the fp16 limit to encode and decode in fp16");
  }
  g.scale = s;
  g.min = mn;
  if (to_float(s) == 0.0f) return g;  // constant group (or range below fp16): q = 0, decodes mn
  for (size_t i = 0; i < x.size(); ++i) {
    const uint16_t diff = from_float(to_float(x[i]) - to_float(mn));
    float q = to_float(fp16::divide_round(to_float(diff), to_float(s)));
    q = q < 0.0f ? 0.0f : (q > float(maxc) ? float(maxc) : q);
    g.fields[i] = round_half_even(q);
  }
  return g;
}

}  // namespace

QuantizedTensor quantize(const QuantSpec& spec, const TensorShape& shape,
                         const uint16_t* input_fp16, const TensorLayout& layout) {
  const PackedSizes p = packed_sizes(spec, shape);  // validates spec and shape
  if (input_fp16 == nullptr) throw Error(ErrorCode::invalid_argument, "input is null");
  for (uint32_t h = 0; h < shape.heads; ++h) {
    for (uint32_t t = 0; t < shape.tokens; ++t) {
      for (uint32_t d = 0; d < shape.dim; ++d) {
        const uint16_t v = input_fp16[index_of(layout, h, t, d)];
        if (!fp16::is_finite(v)) {
          throw Error(ErrorCode::invalid_argument,
                      std::string("input value at ") + position(h, t, d) + " is " +
                          ((v & 0x3ffu) ? "NaN" : "infinite"));
        }
      }
    }
  }
  QuantizedTensor out;
  out.spec = spec;
  out.shape = shape;
  out.codes.assign(p.code_words(), 0);
  out.scales.assign(p.scale_count(), 0);
  out.mins.assign(p.scale_count(), 0);
  const RowMap map = row_map(spec, shape);
  std::vector<uint16_t> x(spec.group_size);
  for (uint64_t row = 0; row < p.rows; ++row) {
    for (uint32_t g = 0; g < p.groups_per_row; ++g) {
      const uint32_t k0 = g * spec.group_size;
      uint32_t h, t, d;
      for (uint32_t i = 0; i < spec.group_size; ++i) {
        map.at(row, k0 + i, h, t, d);
        x[i] = input_fp16[index_of(layout, h, t, d)];
      }
      map.at(row, k0, h, t, d);
      const GroupResult r = quantize_group(spec, x, "starting at " + position(h, t, d));
      out.scales[row * p.groups_per_row + g] = r.scale;
      out.mins[row * p.groups_per_row + g] = r.min;
      for (uint32_t i = 0; i < spec.group_size; ++i) {
        const uint32_t k = k0 + i;
        out.codes[row * p.words_per_row + k / p.fields_per_word] |=
            r.fields[i] << ((k % p.fields_per_word) * p.field_bits);
      }
    }
  }
  return out;
}

QuantizedTensor quantize(const QuantSpec& spec, const TensorShape& shape,
                         const float* input_fp32, const TensorLayout& layout) {
  validate(spec, shape);
  if (input_fp32 == nullptr) throw Error(ErrorCode::invalid_argument, "input is null");
  // Round every covered element to half first, as the authors' model hands over fp16 K/V.
  std::vector<uint16_t> halves(layout.span(shape), 0);
  for (uint32_t h = 0; h < shape.heads; ++h) {
    for (uint32_t t = 0; t < shape.tokens; ++t) {
      for (uint32_t d = 0; d < shape.dim; ++d) {
        const uint64_t i = index_of(layout, h, t, d);
        const float v = input_fp32[i];
        if (!std::isfinite(v)) {
          throw Error(ErrorCode::invalid_argument, std::string("input value at ") +
                                                       position(h, t, d) + " is " +
                                                       (std::isnan(v) ? "NaN" : "infinite"));
        }
        halves[i] = from_float(v);
        if (!fp16::is_finite(halves[i])) {
          throw Error(ErrorCode::invalid_argument, "input value " + std::to_string(v) + " at " +
                                                       position(h, t, d) + " overflows fp16");
        }
      }
    }
  }
  return quantize(spec, shape, halves.data(), layout);
}

namespace {

// Checks that q's arrays have the sizes its spec and shape call for.
PackedSizes checked_sizes(const QuantizedTensor& q) {
  const PackedSizes p = packed_sizes(q.spec, q.shape);
  if (q.codes.size() != p.code_words() || q.scales.size() != p.scale_count() ||
      q.mins.size() != p.scale_count()) {
    throw Error(ErrorCode::invalid_argument,
                "quantized tensor holds " + std::to_string(q.codes.size()) + " code words, " +
                    std::to_string(q.scales.size()) + " scales, " +
                    std::to_string(q.mins.size()) + " mins; its spec needs " +
                    std::to_string(p.code_words()) + ", " + std::to_string(p.scale_count()) +
                    ", " + std::to_string(p.scale_count()));
  }
  return p;
}

uint32_t field_at(const QuantizedTensor& q, const PackedSizes& p, uint64_t row, uint32_t k) {
  const uint32_t word = q.codes[row * p.words_per_row + k / p.fields_per_word];
  const uint32_t mask = (1u << p.field_bits) - 1u;  // field_bits <= 8
  const uint32_t f = (word >> ((k % p.fields_per_word) * p.field_bits)) & mask;
  if (q.spec.bits == QuantBits::b1_58 && f == 3) {
    throw Error(ErrorCode::corrupt_data, "1.58-bit code field holds 3 at row " +
                                             std::to_string(row) + ", position " +
                                             std::to_string(k) + " (valid: 0, 1, 2)");
  }
  return f;
}

}  // namespace

std::vector<uint16_t> dequantize(const QuantizedTensor& q, const TensorLayout& layout) {
  const PackedSizes p = checked_sizes(q);
  std::vector<uint16_t> out(layout.span(q.shape), 0);
  const RowMap map = row_map(q.spec, q.shape);
  const uint32_t along = p.words_per_row * p.fields_per_word;
  for (uint64_t row = 0; row < p.rows; ++row) {
    for (uint32_t k = 0; k < along; ++k) {
      const uint32_t f = field_at(q, p, row, k);
      const uint64_t gi = row * p.groups_per_row + k / q.spec.group_size;
      const uint16_t s = q.scales[gi];
      uint16_t v;
      if (q.spec.bits == QuantBits::b1) {
        v = from_float((f ? 1.0f : -1.0f) * to_float(s));  // the paper's (2q - 1) * s
      } else if (q.spec.bits == QuantBits::b1_58) {
        v = from_float(float(int(f) - 1) * to_float(s));  // ternary * s, not the original's q
      } else {
        v = decode_asym(f, s, q.mins[gi]);
      }
      uint32_t h, t, d;
      map.at(row, k, h, t, d);
      out[index_of(layout, h, t, d)] = v;
    }
  }
  return out;
}

int32_t code_at(const QuantizedTensor& q, uint32_t h, uint32_t t, uint32_t d) {
  const PackedSizes p = checked_sizes(q);
  if (h >= q.shape.heads || t >= q.shape.tokens || d >= q.shape.dim) {
    throw Error(ErrorCode::invalid_argument,
                "element " + position(h, t, d) + " is outside the tensor (heads " +
                    std::to_string(q.shape.heads) + ", tokens " + std::to_string(q.shape.tokens) +
                    ", dim " + std::to_string(q.shape.dim) + ")");
  }
  const bool by_channel = q.spec.axis == QuantAxis::channel;
  const uint64_t row =
      by_channel ? uint64_t(h) * q.shape.dim + d : uint64_t(h) * q.shape.tokens + t;
  const uint32_t f = field_at(q, p, row, by_channel ? t : d);
  return q.spec.bits == QuantBits::b1_58 ? int32_t(f) - 1 : int32_t(f);
}

}  // namespace vidkv::reference
