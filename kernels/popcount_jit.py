"""A Numba intrinsic for the CPU's population count (LLVM's ctpop), which Numba does not expose itself."""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic  # type: ignore[misc]
def popcount64(typingctx: Any, value: Any) -> Any:
    signature = types.int64(types.uint64)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        int64 = ir.IntType(64)
        ctpop = cgutils.get_or_insert_function(builder.module, ir.FunctionType(int64, [int64]), "llvm.ctpop.i64")
        return builder.call(ctpop, args)

    return signature, codegen
