"""The numpy array types the engine's annotations name, in one module that every other
imports (none of them imports another for its types).

For the type checker only: numpy.typing is costly to import, and every run of the CLI would
pay for it, so the aliases exist under TYPE_CHECKING and modules import them the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    BoolArray: TypeAlias = npt.NDArray[np.bool_]
    IntArray: TypeAlias = npt.NDArray[np.int64]
    Int32Array: TypeAlias = npt.NDArray[np.int32]
    ByteArray: TypeAlias = npt.NDArray[np.uint8]  # raw bytes, or a matrix of them
