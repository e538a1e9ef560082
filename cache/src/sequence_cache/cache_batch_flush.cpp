// The flushes of a batched append (cache_batch.cpp): when several sequences' residuals fill in the
// same step, they are quantized together as one tensor whose "heads" are the (sequence, KV head)
// units. This is exact: with residual_length a multiple of group_size no group straddles two
// units, every statistic (ranges, scales, mins, the FFT of a key row, the 1-bit streams' groups) is
// per head, and each unit reads its own sequence's channel table (channel scope `head`). Every
// packed array is [heads][...] with the same bytes per head, so sequence j's part of the joint
// result is one contiguous slice, copied into its segment. The result is bit for bit what
// quantizing each residual alone gives (tests compare every byte).
//
// Steps: gather the residuals (token t of unit (j, h) at row t * units + j * H + h, one copy
// command per sequence) and the channel tables; quantize keys and values once; scatter the slices.
// Sequences whose layer has no channel table yet (their first flush chooses it), or a layer-scope
// key spec (one table per sequence for all its heads), flush alone as append() does.
#include <algorithm>

#include "kernels/gpu_packed_io.hpp"
#include "sequence_cache/cache_internal.hpp"
#include "vidkv/ternary_pack.hpp"

namespace vidkv::cache_detail {

// Scratch of a joint flush, sized for `units` (sequence, KV head) units of residual_length tokens.
struct JointFlush {
  uint32_t units = 0;
  std::unique_ptr<KeyWorkspace> keys;
  std::unique_ptr<rt::Buffer> in_k, in_v, table, fields, value_mins, stream_mins, normal_codes, normal_scales;
  gpu::DevicePacked key_anomalous, values;
};

}  // namespace vidkv::cache_detail

namespace vidkv {

using cache_detail::JointFlush;
using cache_detail::Layer;
using cache_detail::new_buffer;
using cache_detail::PendingWrite;

namespace {

constexpr uint32_t kMaxJoint = 64;  // sequences per joint quantization (bounds its scratch)

PackedBytes bytes_of(const QuantSpec& spec, const TensorShape& shape) {
  return shape.elements() == 0 ? PackedBytes{} : packed_bytes(spec, shape);
}

struct Parts {
  QuantSpec a_spec, s_spec, vs;
  uint32_t k = 0, S = 0;
  bool vidkv = false, ternary = false;
};

Parts parts_of(const Cache::Impl& m) {
  const KeySpec ks = m.key_spec();
  const uint32_t G = m.settings.group_size, D = m.geometry.head_dim;
  Parts p;
  p.a_spec = {QuantBits::b2, QuantAxis::channel, G};
  p.s_spec = {QuantBits::b1, QuantAxis::channel, G};
  p.vs = m.value_spec();
  p.k = anomalous_channel_count(ks, D);
  p.S = coefficient_streams(ks.fft, D - p.k);
  p.vidkv = m.settings.key_mode == CacheSettings::KeyMode::vidkv;
  p.ternary = m.value_format() == ValueFormat::ternary_trits;
  return p;
}

std::shared_ptr<JointFlush> make_joint(Cache::Impl& m, uint32_t units) {
  const uint32_t R = m.settings.residual_length, D = m.geometry.head_dim, G = m.settings.group_size;
  const Parts p = parts_of(m);
  auto j = std::make_shared<JointFlush>();
  j->units = units;
  const TensorShape shape{units, R, D};
  j->in_k = new_buffer(m.ctx, uint64_t(R) * units * D * 2);
  j->in_v = new_buffer(m.ctx, uint64_t(R) * units * D * 2);
  j->table = new_buffer(m.ctx, uint64_t(units) * D * 4);
  j->key_anomalous = gpu::allocate_packed(m.ctx, p.a_spec, {units, R, p.k});
  const PackedBytes s = bytes_of(p.s_spec, {units, R, p.S});
  j->normal_codes = new_buffer(m.ctx, s.codes);
  j->normal_scales = new_buffer(m.ctx, s.scales);
  j->stream_mins = new_buffer(m.ctx, s.mins);
  if (p.ternary) {
    const PackedBytes v = packed_bytes(p.vs, shape);
    j->fields = new_buffer(m.ctx, v.codes);
    j->value_mins = new_buffer(m.ctx, v.mins);
    j->values.codes = new_buffer(m.ctx, trit_packed_bytes(shape, G));
    j->values.scales = new_buffer(m.ctx, v.scales);
    j->values.mins = new_buffer(m.ctx, 16);
  } else {
    j->values = gpu::allocate_packed(m.ctx, p.vs, shape);
  }
  if (p.vidkv) j->keys = std::make_unique<KeyWorkspace>(m.ctx, m.key_spec(), units, D, R);
  return j;
}

// Whether n sequences' parts are exactly n slices of equal bytes (true for every packed layout
// this cache writes; checked so that a layout change falls back rather than mixing bytes).
bool slices_exact(const Cache::Impl& m, uint32_t n) {
  const uint32_t R = m.settings.residual_length, D = m.geometry.head_dim, H = m.geometry.kv_heads;
  const uint32_t G = m.settings.group_size;
  const Parts p = parts_of(m);
  auto same = [&](const QuantSpec& spec, uint32_t dim) {
    const PackedBytes one = bytes_of(spec, {H, R, dim}), all = bytes_of(spec, {n * H, R, dim});
    return all.codes == n * one.codes && all.scales == n * one.scales && all.mins == n * one.mins;
  };
  return same(p.a_spec, p.k) && same(p.s_spec, p.S) && same(p.vs, D) &&
         (!p.ternary || trit_packed_bytes({n * H, R, D}, G) == n * trit_packed_bytes({H, R, D}, G));
}

void record_joint(Cache::Impl& m, VkCommandBuffer cmd, JointFlush& j, const std::vector<const Layer*>& layers,
                  const std::vector<PendingWrite*>& pending) {
  const uint32_t n = uint32_t(layers.size()), H = m.geometry.kv_heads, D = m.geometry.head_dim;
  const uint32_t R = m.settings.residual_length, G = m.settings.group_size, U = n * H;
  const Parts p = parts_of(m);
  const uint64_t row = uint64_t(H) * D * 2;
  // The residuals were just written by copies: order the gather after them.
  rt::compute_transfer_barrier(cmd);
  for (uint32_t s = 0; s < n; ++s) {
    std::vector<rt::CopyRegion> regions(R);
    for (uint32_t t = 0; t < R; ++t) regions[t] = {t * row, (uint64_t(t) * n + s) * row, row};
    rt::record_copy_regions(cmd, m.residual_view(*layers[s], *pending[s], true), j.in_k->view(), regions);
    rt::record_copy_regions(cmd, m.residual_view(*layers[s], *pending[s], false), j.in_v->view(), regions);
    if (p.vidkv) {
      const uint64_t table = uint64_t(H) * D * 4;
      rt::record_copy_regions(cmd, layers[s]->channels->view(), j.table->view(), {{0, s * table, table}});
    }
  }
  rt::transfer_to_compute_barrier(cmd);

  const TensorShape shape{U, R, D};
  const TensorLayout thd = TensorLayout::thd(shape);
  if (p.vidkv) {
    const PackedBuffers normal{j.normal_codes->view(), j.normal_scales->view(), j.stream_mins->view()};
    m.keys.record_quantize(cmd, m.key_spec(), shape, thd, j.in_k->view(), false, j.table->view(), *j.keys,
                           {j.key_anomalous.views(), normal});
  } else {
    m.quantizer.record_quantize(cmd, p.a_spec, shape, thd, ElementType::f16, j.in_k->view(), j.key_anomalous.views());
  }
  if (p.ternary) {
    const PackedBuffers fields{j.fields->view(), j.values.scales->view(), j.value_mins->view()};
    m.quantizer.record_quantize(cmd, p.vs, shape, thd, ElementType::f16, j.in_v->view(), fields);
    rt::compute_to_compute_barrier(cmd);
    m.quantizer.record_pack_trits(cmd, p.vs, shape, j.fields->view(), j.values.codes->view());
  } else {
    m.quantizer.record_quantize(cmd, p.vs, shape, thd, ElementType::f16, j.in_v->view(), j.values.views());
  }
  rt::compute_to_transfer_barrier(cmd);

  // Sequence s's slice of each array into its segment.
  const PackedBytes a = bytes_of(p.a_spec, {H, R, p.k}), st = bytes_of(p.s_spec, {H, R, p.S});
  const PackedBytes v = packed_bytes(p.vs, {H, R, D});
  const uint64_t trits = p.ternary ? trit_packed_bytes({H, R, D}, G) : 0;
  for (uint32_t s = 0; s < n; ++s) {
    cache_detail::Segment& seg = pending[s]->segments.front().segment;
    auto slice = [&](const std::unique_ptr<rt::Buffer>& from, const std::unique_ptr<rt::Buffer>& to, uint64_t bytes) {
      if (bytes > 0) rt::record_copy_regions(cmd, from->view(), to->view(), {{s * bytes, 0, bytes}});
    };
    if (p.k > 0) {
      slice(j.key_anomalous.codes, seg.key_anomalous.codes, a.codes);
      slice(j.key_anomalous.scales, seg.key_anomalous.scales, a.scales);
      slice(j.key_anomalous.mins, seg.key_anomalous.mins, a.mins);
    }
    if (p.S > 0) {
      slice(j.normal_codes, seg.key_normal.codes, st.codes);
      slice(j.normal_scales, seg.key_normal.scales, st.scales);
    }
    if (p.ternary) {
      slice(j.values.codes, seg.values.codes, trits);
      slice(j.values.scales, seg.values.scales, v.scales);
    } else {
      slice(j.values.codes, seg.values.codes, v.codes);
      slice(j.values.scales, seg.values.scales, v.scales);
      slice(j.values.mins, seg.values.mins, v.mins);
    }
  }
}

}  // namespace

void Cache::Impl::record_flushes(VkCommandBuffer cmd, const std::vector<Layer*>& layers,
                                 std::vector<PendingWrite>& pending) {
  std::vector<const Layer*> joint_layers;
  std::vector<PendingWrite*> joint_pending;
  bool first = true;
  const bool joinable = settings.key_mode != CacheSettings::KeyMode::vidkv || key_spec().scope == ChannelScope::head;
  for (size_t i = 0; i < layers.size(); ++i) {
    if (pending[i].segments.empty()) continue;
    if (joinable && layers[i]->channels && !layers[i]->mixed) {
      joint_layers.push_back(layers[i]);
      joint_pending.push_back(&pending[i]);
      continue;
    }
    // Alone (as append() flushes); the flushes share the quantization scratch: one after another.
    if (!first) rt::compute_to_compute_barrier(cmd);
    record_flush(cmd, *layers[i], pending[i]);
    first = false;
  }
  if (joint_layers.size() == 1 || (!joint_layers.empty() && !slices_exact(*this, uint32_t(joint_layers.size())))) {
    for (size_t i = 0; i < joint_layers.size(); ++i) {
      if (!first) rt::compute_to_compute_barrier(cmd);
      record_flush(cmd, *joint_layers[i], *joint_pending[i]);
      first = false;
    }
    return;
  }
  for (size_t from = 0; from < joint_layers.size(); from += kMaxJoint) {
    const size_t to = std::min(joint_layers.size(), from + kMaxJoint);
    const uint32_t units = uint32_t(to - from) * geometry.kv_heads;
    if (!scratch.joint || scratch.joint->units < units) {
      // Recorded work may still read the old scratch: it goes with the retired buffers.
      if (scratch.joint) scratch.retired_joint.push_back(std::move(scratch.joint));
      scratch.joint = make_joint(*this, std::max(units, std::min(kMaxJoint, uint32_t(joint_layers.size())) *
                                                            geometry.kv_heads));
    }
    if (!first) rt::compute_transfer_barrier(cmd);
    record_joint(*this, cmd, *scratch.joint,
                 std::vector<const Layer*>(joint_layers.begin() + from, joint_layers.begin() + to),
                 std::vector<PendingWrite*>(joint_pending.begin() + from, joint_pending.begin() + to));
    first = false;
  }
}

}  // namespace vidkv
