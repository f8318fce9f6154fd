"""A Python ctypes client of the kernel: the ABI is plain C, not Deno-only.

Usage: python3 abi_client.py <library>. Prints one JSON object with what it
observed; exits non-zero on the first surprise.
"""

import ctypes
import json
import sys


class KrepisBuffer(ctypes.Structure):
    _fields_ = [("ptr", ctypes.POINTER(ctypes.c_uint8)), ("len", ctypes.c_size_t)]


RESULT_OK, RESULT_NULL_POINTER, RESULT_MALFORMED_REQUEST, RESULT_FAILED = 0, 1, 3, 5


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
    }))


if __name__ == "__main__":
    main(sys.argv[1])
