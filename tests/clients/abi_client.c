/*
 * A plain C client of the kernel, compiled against include/krepis.h with zig's
 * C compiler (or the system's cc): proves the ABI is C, not Deno-only. Prints one JSON
 * object with what it observed; exits non-zero on the first surprise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "krepis.h"

#define CHECK(cond, what)                                   \
  do {                                                      \
    if (!(cond)) {                                          \
      fprintf(stderr, "abi_client: check failed: %s\n", what); \
      return 1;                                             \
    }                                                       \
  } while (0)

int main(void) {
  uint32_t abi = krepis_abi_version();
  CHECK(abi >> 16 == KREPIS_ABI_MAJOR, "major matches the header");
  CHECK((abi & 0xffff) == KREPIS_ABI_MINOR, "minor matches the header");

  /* krepis.v1.Request { echo: { payload: "hello" } } */
  const uint8_t echo[] = {0x12, 0x07, 0x0a, 0x05, 'h', 'e', 'l', 'l', 'o'};
  KrepisBuffer out = {NULL, 0};
  KrepisResult rc = krepis_call(echo, sizeof echo, &out);
  CHECK(rc == KREPIS_RESULT_OK, "echo succeeds");
  CHECK(strcmp(krepis_last_error(), "") == 0, "no error after success");
  /* krepis.v1.Response { echo: { payload: "hello" } } has the same bytes. */
  CHECK(out.len == sizeof echo && memcmp(out.ptr, echo, sizeof echo) == 0, "echo answers the payload");
  krepis_buffer_free(&out);
  CHECK(out.ptr == NULL && out.len == 0, "free resets the buffer");
  krepis_buffer_free(&out);  /* a second free is a no-op */
  krepis_buffer_free(NULL);  /* so is NULL */

  uint8_t copy[sizeof echo];
  CHECK(krepis_call(echo, sizeof echo, &out) == KREPIS_RESULT_OK, "echo again");
  CHECK(krepis_buffer_take(&out, copy, 2) == KREPIS_RESULT_INVALID_LENGTH, "take refuses a short dest");
  CHECK(krepis_buffer_take(&out, copy, sizeof copy) == KREPIS_RESULT_OK, "take copies");
  CHECK(memcmp(copy, echo, sizeof echo) == 0 && out.ptr == NULL, "take copied and freed");

  const uint8_t malformed[] = {0xff, 0xff, 0xff};
  rc = krepis_call(malformed, sizeof malformed, &out);
  CHECK(rc == KREPIS_RESULT_MALFORMED_REQUEST, "malformed bytes are refused");
  CHECK(out.ptr == NULL, "no output on failure");
  char malformed_error[256];
  snprintf(malformed_error, sizeof malformed_error, "%s", krepis_last_error());
  CHECK(strlen(malformed_error) > 0, "a message explains the refusal");

  CHECK(krepis_call(NULL, 5, &out) == KREPIS_RESULT_NULL_POINTER, "NULL request with a length");
  CHECK(krepis_call(echo, sizeof echo, NULL) == KREPIS_RESULT_NULL_POINTER, "NULL response");
  CHECK(krepis_call(echo, (size_t)KREPIS_MAX_REQUEST_LEN + 1, &out) == KREPIS_RESULT_INVALID_LENGTH,
        "oversized length");
  CHECK(krepis_call(NULL, 0, &out) == KREPIS_RESULT_UNKNOWN_REQUEST, "empty request");

  /* krepis.v1.Request { fail: { message: "x", panic: true } } */
  const uint8_t panic[] = {0x1a, 0x05, 0x0a, 0x01, 'x', 0x10, 0x01};
  CHECK(krepis_call(panic, sizeof panic, &out) == KREPIS_RESULT_PANIC, "a panic is caught");

  printf("{\"version\":\"%s\",\"abi\":%u,\"fingerprint\":\"%s\",\"malformed\":\"%s\",\"panic\":\"%s\"}\n",
         krepis_version(), abi, krepis_abi_fingerprint(), malformed_error, krepis_last_error());
  return 0;
}
