/*
 * Preloaded after the ASan and UBSan runtimes by scripts/test-sanitize.sh: sends UBSan's reports
 * to the file NTL_UBSAN_LOG_PATH names (".<pid>" is appended), as ASan's log_path does for ASan.
 *
 * UBSAN_OPTIONS=log_path cannot: gcc's libubsan and libasan each carry a copy of the sanitizer
 * common code, both export __sanitizer_set_report_path, and with libasan first in the library
 * list UBSan's own call binds to ASan's copy, so UBSan keeps writing to stderr. A child process's
 * stderr belongs to the test that started it, and may never be shown. dlsym() on libubsan's
 * handle finds libubsan's own copy.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>

__attribute__((constructor)) static void route_ubsan_reports(void) {
  const char *path = getenv("NTL_UBSAN_LOG_PATH");
  void *ubsan = dlopen("libubsan.so.1", RTLD_LAZY | RTLD_NOLOAD);
  if (path == NULL || ubsan == NULL) return;
  void (*set_report_path)(const char *) = (void (*)(const char *))dlsym(ubsan, "__sanitizer_set_report_path");
  if (set_report_path != NULL) set_report_path(path);
}
