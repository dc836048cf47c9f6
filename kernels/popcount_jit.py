"""A Numba intrinsic for the CPU's population count (LLVM's ctpop), which Numba does not expose itself."""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def _ctpop64(typingctx: Any, value: Any) -> Any:
    signature = types.int64(types.uint64)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        int64 = ir.IntType(64)
        function_type = ir.FunctionType(int64, [int64])
        ctpop = cgutils.get_or_insert_function(builder.module, function_type, "llvm.ctpop.i64")  # type: ignore[no-untyped-call]
        return builder.call(ctpop, args)

    return signature, codegen


# Callable from @njit code only, as popcount64(np.uint64(x)) -> int64.
popcount64: Any = _ctpop64
