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

/* Writes a protobuf varint; returns the bytes written. */
static size_t put_varint(uint8_t *out, uint64_t value) {
  size_t n = 0;
  do {
    uint8_t byte = value & 0x7f;
    value >>= 7;
    out[n++] = byte | (value ? 0x80 : 0);
  } while (value);
  return n;
}

/* Reads a protobuf varint at *at (bounded by end); 0 on a malformed one. */
static int get_varint(const uint8_t **at, const uint8_t *end, uint64_t *value) {
  *value = 0;
  for (int shift = 0; *at < end && shift < 64; shift += 7) {
    uint8_t byte = *(*at)++;
    *value |= (uint64_t)(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return 1;
  }
  return 0;
}

/* Reads `path` through the kernel's zero-copy data plane and checks the view
 * against the file read with stdio. Returns 0, or 1 on the first surprise. */
static int check_view(const char *path, uint64_t *viewed) {
  size_t path_len = strlen(path);
  CHECK(path_len < 1000, "a short path");
  /* krepis.v1.Request { read_file: { path } } */
  uint8_t request[1024];
  uint8_t inner[1010];
  size_t inner_len = 0;
  inner[inner_len++] = 0x0a;
  inner_len += put_varint(inner + inner_len, path_len);
  memcpy(inner + inner_len, path, path_len);
  inner_len += path_len;
  size_t request_len = 0;
  request[request_len++] = 0x22;
  request_len += put_varint(request + request_len, inner_len);
  memcpy(request + request_len, inner, inner_len);
  request_len += inner_len;

  KrepisBuffer out = {NULL, 0};
  CHECK(krepis_call(request, request_len, &out) == KREPIS_RESULT_OK, "read_file succeeds");
  /* krepis.v1.Response { view: { id = 1, length = 2 } } */
  const uint8_t *at = out.ptr, *end = out.ptr + out.len;
  uint64_t size = 0, id = 0, length = 0;
  CHECK(at < end && *at++ == 0x1a && get_varint(&at, end, &size) && size == (uint64_t)(end - at),
        "the answer is a View");
  while (at < end) {
    uint8_t tag = *at++;
    uint64_t value = 0;
    CHECK(get_varint(&at, end, &value), "a well-formed View");
    if (tag == 0x08) id = value;
    if (tag == 0x10) length = value;
  }
  krepis_buffer_free(&out);

  KrepisView view = {NULL, 0};
  CHECK(krepis_view_get(id, &view) == KREPIS_RESULT_OK, "the view is lent");
  CHECK(view.len == length, "the view has the announced length");
  FILE *file = fopen(path, "rb");
  CHECK(file != NULL, "the file opens with stdio");
  uint8_t *bytes = malloc(length ? length : 1);
  size_t got = fread(bytes, 1, length, file);
  int extra = fgetc(file);
  fclose(file);
  CHECK(got == length && extra == EOF, "stdio reads as many bytes");
  CHECK(memcmp(bytes, view.ptr, length) == 0, "the view shows the file's bytes");
  free(bytes);
  CHECK(krepis_view_release(id) == KREPIS_RESULT_OK, "the view is released");
  CHECK(krepis_view_release(id) == KREPIS_RESULT_UNKNOWN_HANDLE, "a second release is refused");
  KrepisView after = {NULL, 7};
  CHECK(krepis_view_get(id, &after) == KREPIS_RESULT_UNKNOWN_HANDLE && after.len == 7,
        "a released view is not lent again");
  *viewed = length;
  return 0;
}

int main(int argc, char **argv) {
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

  char panic_error[256];
  snprintf(panic_error, sizeof panic_error, "%s", krepis_last_error());

  /* The zero-copy data plane: this program's own file, through a view. */
  uint64_t viewed = 0;
  CHECK(argc > 0 && check_view(argv[0], &viewed) == 0, "the view checks pass");

  printf("{\"version\":\"%s\",\"abi\":%u,\"fingerprint\":\"%s\",\"malformed\":\"%s\",\"panic\":\"%s\",\"viewed\":%llu}\n",
         krepis_version(), abi, krepis_abi_fingerprint(), malformed_error, panic_error,
         (unsigned long long)viewed);
  return 0;
}
