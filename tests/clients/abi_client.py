"""A Python ctypes client of the kernel: the ABI is plain C, not Deno-only.

Usage: python3 abi_client.py <library>. Prints one JSON object with what it
observed; exits non-zero on the first surprise.
"""

import ctypes
import json
import sys


class KrepisBuffer(ctypes.Structure):
    _fields_ = [("ptr", ctypes.POINTER(ctypes.c_uint8)), ("len", ctypes.c_size_t)]


class KrepisView(ctypes.Structure):
    _fields_ = [("ptr", ctypes.POINTER(ctypes.c_uint8)), ("len", ctypes.c_size_t)]


RESULT_OK, RESULT_NULL_POINTER, RESULT_MALFORMED_REQUEST, RESULT_FAILED = 0, 1, 3, 5
RESULT_UNKNOWN_HANDLE = 7


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def read_varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def check_view(lib, path: str) -> int:
    """Reads `path` through a kernel view; checks it against open()."""
    encoded = path.encode()
    inner = b"\x0a" + varint(len(encoded)) + encoded
    request = b"\x22" + varint(len(inner)) + inner  # Request { read_file: { path } }
    out = KrepisBuffer()
    assert lib.krepis_call(request, len(request), ctypes.byref(out)) == RESULT_OK
    answer = ctypes.string_at(out.ptr, out.len)
    lib.krepis_buffer_free(ctypes.byref(out))
    assert answer[0] == 0x1A, answer  # Response { view }
    size, at = read_varint(answer, 1)
    assert at + size == len(answer)
    fields = {}
    while at < len(answer):
        tag = answer[at]
        fields[tag], at = read_varint(answer, at + 1)
    view_id, length = fields[0x08], fields[0x10]
    view = KrepisView()
    assert lib.krepis_view_get(view_id, ctypes.byref(view)) == RESULT_OK
    assert view.len == length
    with open(path, "rb") as file:
        assert ctypes.string_at(view.ptr, view.len) == file.read()
    assert lib.krepis_view_release(view_id) == RESULT_OK
    assert lib.krepis_view_release(view_id) == RESULT_UNKNOWN_HANDLE
    return length


def main(path: str) -> None:
    lib = ctypes.CDLL(path)
    lib.krepis_abi_version.restype = ctypes.c_uint32
    lib.krepis_abi_fingerprint.restype = ctypes.c_char_p
    lib.krepis_version.restype = ctypes.c_char_p
    lib.krepis_last_error.restype = ctypes.c_char_p
    lib.krepis_call.restype = ctypes.c_uint32
    lib.krepis_call.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(KrepisBuffer)]
    lib.krepis_buffer_free.argtypes = [ctypes.POINTER(KrepisBuffer)]
    lib.krepis_buffer_free.restype = None
    lib.krepis_view_get.argtypes = [ctypes.c_uint64, ctypes.POINTER(KrepisView)]
    lib.krepis_view_get.restype = ctypes.c_uint32
    lib.krepis_view_release.argtypes = [ctypes.c_uint64]
    lib.krepis_view_release.restype = ctypes.c_uint32

    out = KrepisBuffer()
    # krepis.v1.Request { echo: { payload: "py" } }
    echo = bytes([0x12, 0x04, 0x0A, 0x02]) + b"py"
    assert lib.krepis_call(echo, len(echo), ctypes.byref(out)) == RESULT_OK
    answer = ctypes.string_at(out.ptr, out.len)
    lib.krepis_buffer_free(ctypes.byref(out))
    assert answer == echo, answer  # the Response encodes to the same bytes
    assert not out.ptr and out.len == 0

    malformed = b"\xff\xff\xff"
    assert lib.krepis_call(malformed, len(malformed), ctypes.byref(out)) == RESULT_MALFORMED_REQUEST
    malformed_error = lib.krepis_last_error().decode()
    assert malformed_error

    assert lib.krepis_call(None, 3, ctypes.byref(out)) == RESULT_NULL_POINTER
    # krepis.v1.Request { fail: { message: "nope" } }
    fail = bytes([0x1A, 0x06, 0x0A, 0x04]) + b"nope"
    assert lib.krepis_call(fail, len(fail), ctypes.byref(out)) == RESULT_FAILED
    assert lib.krepis_last_error() == b"nope"

    print(json.dumps({
        "version": lib.krepis_version().decode(),
        "abi": lib.krepis_abi_version(),
        "fingerprint": lib.krepis_abi_fingerprint().decode(),
        "malformed": malformed_error,
        "echo": answer[4:].decode(),
        "viewed": check_view(lib, __file__),
    }))


if __name__ == "__main__":
    main(sys.argv[1])
