"""Optional extras (xarray, safetensors, treescope ...) are imported inside the function that needs
them; `require` is that import, with the one error message that says which extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, op: str, extra: str) -> ModuleType:
    """``import module``, or a ModuleNotFoundError naming ``op`` and the extra ``namedax[extra]``.

    Examples:
        >>> from namedax.core._optional import require
        >>> require("json", "example", "none").__name__
        'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise ModuleNotFoundError(
            f"{op} needs {top}, which is not installed: pip install 'namedax[{extra}]' (or pip install {top})"
        ) from None
