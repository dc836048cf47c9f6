"""One place that imports optional dependencies and says how to install them when they are missing."""

from __future__ import annotations

import importlib
from types import ModuleType

# Which extra of the `hashmatch` distribution brings each optional module.
_INSTALL_HINTS: dict[str, str] = {
    "numba": "pip install numba  (part of hashmatch's default install)",
    "simplejpeg": "pip install simplejpeg  (part of hashmatch's default install)",
    "cupy": "pip install cupy-cuda12x  (or the wheel matching your CUDA; see README, GPU)",
    "pdqhash": "pip install 'hashmatch[dev]'  (the C++ reference, used as a test oracle only)",
    "ray": "pip install 'hashmatch[distributed]'  (Ray with Ray Data)",
    "ray.data": "pip install 'hashmatch[distributed]'  (Ray with Ray Data)",
    "cryptography": "pip install 'hashmatch[signing]'  (Ed25519 for signed audit checkpoints)",
}


class MissingDependencyError(ImportError):
    """An optional dependency that the requested feature needs is not installed."""

    def __init__(self, module: str, purpose: str) -> None:
        hint = _INSTALL_HINTS.get(module, f"pip install {module}")
        super().__init__(f"{purpose} needs the '{module}' package, which is not installed: {hint}")
        self.module = module


_cache: dict[str, ModuleType | None] = {}


def optional_module(name: str) -> ModuleType | None:
    """Return the module if it imports, else None. The answer is cached for the process."""
    if name not in _cache:
        try:
            _cache[name] = importlib.import_module(name)
        except ImportError:
            _cache[name] = None
    return _cache[name]


def require_module(name: str, purpose: str) -> ModuleType:
    """Return the module, or raise MissingDependencyError naming the purpose and the install command."""
    module = optional_module(name)
    if module is None:
        raise MissingDependencyError(name, purpose)
    return module
