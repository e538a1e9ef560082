#pragma once
// Marks the public API. Everything else in the library has hidden visibility.
#if defined(VIDKV_SHARED) && defined(VIDKV_BUILDING_LIBRARY)
#define VIDKV_API __attribute__((visibility("default")))
#elif defined(VIDKV_SHARED)
#define VIDKV_API __attribute__((visibility("default")))
#else
#define VIDKV_API
#endif
