/* Preloaded in the sanitizer CI run only: makes dlclose a no-op, so the Vulkan driver and layers
   stay mapped until LeakSanitizer runs at exit. Otherwise their allocations show as
   "<unknown module>" and cannot be told apart from vidkv's, or suppressed by library name. */
int dlclose(void* handle) {
  (void)handle;
  return 0;
}
