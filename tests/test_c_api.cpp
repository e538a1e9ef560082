// The C API round trip, written in C (test_c_api.c), run under gtest with validation on.
#include <gtest/gtest.h>

#include <cstdlib>

#include "vulkan_fixture.hpp"

extern "C" int vidkv_test_c_api_round_trip(char* message, size_t size);

namespace vidkv::test {
namespace {

TEST(CApi, RoundTripFromC) {
  // The C side creates its own context from the environment: ask for validation there too.
  setenv("VIDKV_VALIDATION", "1", 0);
  char message[512];
  const int line = vidkv_test_c_api_round_trip(message, sizeof message);
  EXPECT_EQ(line, 0) << "test_c_api.c line " << line << ": " << message;
}

}  // namespace
}  // namespace vidkv::test
