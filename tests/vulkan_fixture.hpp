#pragma once
// Every Vulkan test runs on one shared context with VK_LAYER_KHRONOS_validation on; a test fails
// when any validation warning or error arrives while it runs.
#include <gtest/gtest.h>

#include <memory>

#include "vidkv/runtime/context.hpp"

namespace vidkv::test {

// Created on first use with validation forced on and the device from VIDKV_DEVICE.
std::shared_ptr<rt::Context> shared_context();

class VulkanTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  std::shared_ptr<rt::Context> ctx;

 private:
  size_t messages_before_ = 0;
};

// Fails the current test with every validation message `context` received after `since`.
void expect_no_validation_messages(const rt::Context& context, size_t since);

}  // namespace vidkv::test
