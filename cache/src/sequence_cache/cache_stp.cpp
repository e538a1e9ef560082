// Semantic token protection inside vidkv::Cache (DESIGN section 2, stp.hpp): a prefill segment of
// an STP cache stores the values of its protected tokens at 2 bits and the others at 1.58 bits,
// each part gathered in increasing position and quantized per channel exactly as
// GpuStp::quantize_values / reference::quantize_values_stp do, plus a per-token map the attention
// reads (index in the token's part, bit 31 for protected). Keys are unaffected.
//
// Which tokens are protected is decided on the host from the caller's scores or list (a top-n
// over at most max_tokens numbers, as reference::stp_select defines it); the values never leave
// the device.
#include <algorithm>
#include <string>

#include "sequence_cache/cache_internal.hpp"
#include "kernels/gpu_common.hpp"
#include "vidkv/ternary_pack.hpp"

namespace vidkv {

using cache_detail::Segment;
using cache_detail::StpPlan;

namespace {

QuantSpec high_spec(uint32_t g) { return {QuantBits::b2, QuantAxis::channel, g, TernaryScale::mean_abs}; }

struct MovePush {
  uint32_t heads, dim, count, head_stride, token_stride;
};

}  // namespace

StpPlan Cache::Impl::plan_stp(uint32_t tokens, const CacheStpInput* input) const {
  StpPlan plan;
  if (!settings.stp) {
    if (input) {
      throw Error(ErrorCode::invalid_argument, "cache settings " + settings.name +
                                                   " have no semantic token protection; prefill without STP input");
    }
    return plan;
  }
  if (!input) {
    throw Error(ErrorCode::invalid_argument, "cache settings " + settings.name +
                                                 " protect tokens (STP): prefill needs a CacheStpInput (scores "
                                                 "of the visual tokens or a list of protected tokens)");
  }
  const uint32_t G = settings.group_size, quantized = tokens - tokens % G;
  const std::string prefix = "cache: STP input: ";
  if (!input->scores.empty()) {
    if (input->scores.size() != input->visual_tokens) {
      throw Error(ErrorCode::invalid_argument, prefix + std::to_string(input->scores.size()) + " scores for " +
                                                   std::to_string(input->visual_tokens) + " visual tokens");
    }
    if (uint64_t(input->first_visual) + input->visual_tokens > quantized) {
      throw Error(ErrorCode::invalid_argument,
                  prefix + "visual tokens [" + std::to_string(input->first_visual) + ", " +
                      std::to_string(uint64_t(input->first_visual) + input->visual_tokens) +
                      ") run past the prefill's quantized part (" + std::to_string(quantized) + " of " +
                      std::to_string(tokens) + " tokens; the rest stays fp16)");
    }
    StpSpec spec;
    spec.ratio = settings.stp_ratio;
    spec.group_size = G;
    spec.first_visual = input->first_visual;
    plan.split = reference::stp_select(spec, input->scores, quantized);
  } else {
    plan.split = reference::split_from_list(input->protected_tokens, quantized, G);
  }
  plan.active = true;
  return plan;
}

void Cache::Impl::prepare_stp_values(Segment& seg, const TokenSplit& split) {
  const uint32_t H = seg.heads, D = geometry.head_dim, G = settings.group_size;
  const uint32_t n = uint32_t(split.protected_tokens.size()), T = n + uint32_t(split.other_tokens.size());
  const TensorShape high{H, n, D}, low{H, T - n, D};
  const QuantSpec ls = value_spec();
  seg.stp = true;
  seg.split = split;
  seg.values_high = gpu::allocate_packed(ctx, high_spec(G), high);
  const PackedBytes lb = low.tokens ? packed_bytes(ls, low) : PackedBytes{};
  seg.values.codes = cache_detail::new_buffer(ctx, low.tokens ? trit_packed_bytes(low, G) : 0);
  seg.values.scales = cache_detail::new_buffer(ctx, lb.scales);
  seg.values.mins = cache_detail::new_buffer(ctx, 16);
  std::vector<uint32_t> map(T);
  for (uint32_t i = 0; i < n; ++i) map[split.protected_tokens[i]] = i | 0x80000000u;
  for (uint32_t i = 0; i < T - n; ++i) map[split.other_tokens[i]] = i;
  seg.token_map = cache_detail::new_buffer(ctx, uint64_t(T) * 4);
  seg.token_map->upload(map.data(), uint64_t(T) * 4);
  if (!scratch.stp_dense) scratch.stp_dense = cache_detail::new_buffer(ctx, uint64_t(max_segment_tokens()) * token_bytes());
  const PackedBytes hb = n ? packed_bytes(high_spec(G), high) : PackedBytes{};
  seg.value_bytes = {hb.codes + (low.tokens ? trit_packed_bytes(low, G) : 0), hb.scales + lb.scales, hb.mins,
                     uint64_t(T) * 4};
}

rt::BufferView Cache::Impl::transient_list(const std::vector<uint32_t>& tokens) {
  auto b = cache_detail::new_buffer(ctx, tokens.size() * 4);
  if (!tokens.empty()) b->upload(tokens.data(), tokens.size() * 4);
  const rt::BufferView view = b->view();
  scratch.retired.push_back(std::move(b));
  return view;
}

namespace {

// token_gather / token_scatter of `list` between the [T][H][D] tensor `full` (H: the segment's
// heads) and the dense rows starting `at_token` rows into the scratch.
void move_tokens(Cache::Impl& m, VkCommandBuffer cmd, const char* shader, uint32_t H, const rt::BufferView& full,
                 const rt::BufferView& list, uint32_t count, uint32_t at_token) {
  if (count == 0) return;
  const uint32_t D = m.geometry.head_dim;
  const MovePush push{H, D, count, D, H * D};
  const uint64_t row = uint64_t(H) * D * 2, bytes = uint64_t(count) * row;
  const rt::BufferView dense{m.scratch.stp_dense->handle(), uint64_t(at_token) * row, bytes};
  const bool gather = std::string(shader) == "token_gather";
  const rt::BufferView views[] = {gather ? full : dense, list, gather ? dense : full};
  m.pipelines.get(gpu::pipeline(shader, {}, 3, sizeof(push)))
      .dispatch(cmd, views, &push, rt::grid_workgroups(uint64_t(count) * H * D / 2, gpu::kWorkgroupSize));
}

}  // namespace

void Cache::Impl::record_stp_values(VkCommandBuffer cmd, Segment& seg, const rt::BufferView& values) {
  const uint32_t H = seg_heads(seg), D = geometry.head_dim, G = settings.group_size;
  const uint32_t n = uint32_t(seg.split.protected_tokens.size()), rest = uint32_t(seg.split.other_tokens.size());
  const TensorShape high{H, n, D}, low{H, rest, D};
  const uint64_t row = uint64_t(H) * D * 2;  // bytes of one token of the segment's heads
  const rt::BufferView plist = transient_list(seg.split.protected_tokens);
  const rt::BufferView olist = transient_list(seg.split.other_tokens);
  // Protected tokens' rows first, then the others', in the dense scratch: each part is then an
  // ordinary [count][H][D] tensor for the grouped quantizer.
  move_tokens(*this, cmd, "token_gather", H, values, plist, n, 0);
  move_tokens(*this, cmd, "token_gather", H, values, olist, rest, n);
  rt::compute_to_compute_barrier(cmd);
  const rt::BufferView dense = scratch.stp_dense->view();
  if (n > 0) {
    quantizer.record_quantize(cmd, high_spec(G), high, TensorLayout::thd(high), ElementType::f16,
                              {dense.buffer, 0, uint64_t(n) * row}, seg.values_high.views());
  }
  if (rest > 0) {
    const QuantSpec ls = value_spec();
    const PackedBuffers fields{scratch.value_fields->view(), seg.values.scales->view(), scratch.value_mins->view()};
    quantizer.record_quantize(cmd, ls, low, TensorLayout::thd(low), ElementType::f16,
                              {dense.buffer, uint64_t(n) * row, uint64_t(rest) * row}, fields);
    rt::compute_to_compute_barrier(cmd);
    quantizer.record_pack_trits(cmd, ls, low, scratch.value_fields->view(), seg.values.codes->view());
  }
}

void Cache::Impl::record_stp_decode(VkCommandBuffer cmd, const Segment& seg, const rt::BufferView& out) {
  const uint32_t H = seg_heads(seg), D = geometry.head_dim, G = settings.group_size;
  const uint32_t n = uint32_t(seg.split.protected_tokens.size()), rest = uint32_t(seg.split.other_tokens.size());
  const TensorShape high{H, n, D}, low{H, rest, D};
  const uint64_t row = uint64_t(H) * D * 2;  // bytes of one token of the segment's heads
  const rt::BufferView dense = scratch.stp_dense->view();
  // The dense scratch may still be read by earlier work of this operation (none) or written by
  // an earlier segment's decode: the caller's barrier between segments orders them.
  if (n > 0) {
    quantizer.record_dequantize(cmd, high_spec(G), high, seg.values_high.views(), TensorLayout::thd(high),
                                ElementType::f16, {dense.buffer, 0, uint64_t(n) * row});
  }
  if (rest > 0) {
    const PackedBuffers trits{seg.values.codes->view(), seg.values.scales->view(), scratch.value_mins->view()};
    quantizer.record_dequantize_trits(cmd, value_spec(), low, trits, TensorLayout::thd(low), ElementType::f16,
                                      {dense.buffer, uint64_t(n) * row, uint64_t(rest) * row});
  }
  rt::compute_to_compute_barrier(cmd);
  move_tokens(*this, cmd, "token_scatter", H, out, transient_list(seg.split.protected_tokens), n, 0);
  move_tokens(*this, cmd, "token_scatter", H, out, transient_list(seg.split.other_tokens), rest, n);
}

}  // namespace vidkv
