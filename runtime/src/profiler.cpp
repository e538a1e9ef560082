#include "vidkv/runtime/profiler.hpp"

#include "vidkv/runtime/context.hpp"
#include "vk.hpp"

namespace vidkv::rt {

Profiler::Profiler(std::shared_ptr<Context> context, uint32_t capacity)
    : context_(std::move(context)), capacity_(capacity) {
  if (capacity_ == 0 || capacity_ > (1u << 20))
    throw Error(ErrorCode::invalid_argument, "profiler capacity " + std::to_string(capacity) + " (1 to 2^20 events)");
  if (context_->timestamp_valid_bits() == 0)
    throw Error(ErrorCode::missing_feature, context_->info().name + " has no timestamps on its compute queue");
  VkQueryPoolCreateInfo info{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
  info.queryType = VK_QUERY_TYPE_TIMESTAMP;
  info.queryCount = 2 * capacity_;  // start and end of each event
  check(vkCreateQueryPool(context_->device(), &info, nullptr, &pool_), "vkCreateQueryPool(profiler)");
  labels_.reserve(capacity_);
  last_reported_.assign(size_t(capacity_) * 2, 0);
  reported_.assign(capacity_, false);
  context_->set_profiler(this);
}

Profiler::~Profiler() {
  if (context_->profiler() == this) context_->set_profiler(nullptr);
  vkDestroyQueryPool(context_->device(), pool_, nullptr);
}

uint32_t Profiler::begin(VkCommandBuffer cmd, const std::string& label) {
  std::lock_guard lock(mutex_);
  if (labels_.size() >= capacity_) {
    ++dropped_;
    return kNoSlot;
  }
  const uint32_t slot = uint32_t(labels_.size());
  labels_.push_back(label);
  ended_.push_back(false);
  // Reset in the command buffer itself: the pair may have been used by an earlier, collected run,
  // and a host-side reset would need the hostQueryReset feature.
  vkCmdResetQueryPool(cmd, pool_, 2 * slot, 2);
  vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, pool_, 2 * slot);
  return slot;
}

void Profiler::end(VkCommandBuffer cmd, uint32_t slot) {
  std::lock_guard lock(mutex_);
  if (slot == kNoSlot || slot >= labels_.size() || ended_[slot]) return;
  ended_[slot] = true;
  vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, pool_, 2 * slot + 1);
}

std::vector<ProfileEvent> Profiler::collect() {
  std::lock_guard lock(mutex_);
  std::vector<ProfileEvent> events;
  const uint32_t used = uint32_t(labels_.size());
  if (used == 0) return events;
  // {value, availability} per query, no waiting: work that never ran cannot hang the caller.
  std::vector<uint64_t> results(size_t(used) * 2 * 2, 0);
  const VkResult r = vkGetQueryPoolResults(context_->device(), pool_, 0, 2 * used, results.size() * sizeof(uint64_t),
                                           results.data(), 2 * sizeof(uint64_t),
                                           VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WITH_AVAILABILITY_BIT);
  if (r != VK_NOT_READY) check(r, "vkGetQueryPoolResults(profiler)");
  const uint32_t bits = context_->timestamp_valid_bits();
  const uint64_t mask = bits >= 64 ? ~0ull : ((1ull << bits) - 1);
  const double ns_per_tick = context_->info().timestamp_period_ns;
  bool have_origin = false;
  uint64_t origin = 0;
  for (uint32_t i = 0; i < used; ++i) {
    const uint64_t* start = &results[size_t(4) * i];
    const uint64_t* stop = start + 2;
    // A slot whose new command buffer never ran still holds the values of its previous, already
    // reported use (its reset was recorded in that same command buffer): unchanged values are
    // that, not a new event.
    const bool stale = reported_[i] && start[0] == last_reported_[2 * i] && stop[0] == last_reported_[2 * i + 1];
    if (!ended_[i] || start[1] == 0 || stop[1] == 0 || stale) {
      ++dropped_;
      continue;
    }
    reported_[i] = true;
    last_reported_[2 * i] = start[0];
    last_reported_[2 * i + 1] = stop[0];
    if (!have_origin) {
      origin = start[0];
      have_origin = true;
    }
    // Differences under the mask survive a counter that wraps within its valid bits.
    ProfileEvent e;
    e.label = labels_[i];
    e.start_ms = double((start[0] - origin) & mask) * ns_per_tick * 1e-6;
    e.duration_ms = double((stop[0] - start[0]) & mask) * ns_per_tick * 1e-6;
    events.push_back(std::move(e));
  }
  labels_.clear();
  ended_.clear();
  return events;
}

uint64_t Profiler::dropped() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

}  // namespace vidkv::rt
