"""A disk cache of traced computations, so that a fresh process does not trace the fit again.

JAX's persistent compilation cache (``jax_compilation_cache_dir``) stores compiled
executables, but its key is the lowered module. A fresh process therefore still traces and
lowers every jitted function before it can find the executable: for a small model, a
large part of the process (benchmarks/README.md).

When the persistent cache is on, glmmjax stores the computation of ``GLMM.fit``
(``fit_and_post``: the optimizer and the post-fit pass) beside it as a ``jax.export``
artefact (serialized StableHLO). A later process deserializes the module and compiles it
through the persistent cache, without tracing Python. What that saves a fresh process with
a filled cache is measured by ``python benchmarks/bench_reference.py --no-r`` with
``GLMMJAX_TRACE_CACHE=0`` and without (benchmarks/README.md). The first process, which
writes the artefact, pays for it with a second lowering of the module.

The file's key is everything the trace depends on:

- glmmjax's source (a digest of its .py files);
- the versions of Python, jax, jaxlib and numpy, and the platform;
- the JAX settings that change a trace (x64, default matmul precision, rank and dtype promotion);
- the function and its static arguments, described field by field;
- the structure, shapes and dtypes of the array arguments.

A static argument that cannot be described this way (for example a user-defined family, whose
code is not in the digest) is not cached; it is traced as usual.

Each file starts with a header holding its key and the sha256 of the serialized module; a
file whose header does not match (damaged, truncated, or another computation's artefact
under this name) is removed, with a warning, and the function is traced as usual. The
directory must be private to the user: an artefact is a program that glmmjax runs.

The cache is used only on CPU, the backend it is tested on. ``GLMMJAX_TRACE_CACHE=0`` turns it
off.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
import threading
from pathlib import Path

import jax
import numpy as np

__all__ = ["cached_call", "describe"]

_SUBDIR = "glmmjax-traces"
_memo: dict = {}
_lock = threading.Lock()
_source_digest: str | None = None


def _directory() -> Path | None:
    """Where the traces live (None: the cache is off)."""
    if os.environ.get("GLMMJAX_TRACE_CACHE", "1") == "0":
        return None
    cfg = jax.config
    base = getattr(cfg, "jax_compilation_cache_dir", None)
    if not base or not getattr(cfg, "jax_enable_compilation_cache", True):
        return None
    if getattr(cfg, "jax_disable_jit", False) or getattr(cfg, "jax_debug_nans", False) \
            or getattr(cfg, "jax_debug_infs", False):
        return None
    if jax.default_backend() != "cpu":
        return None
    return Path(base) / _SUBDIR


def _digest() -> str:
    """sha256 of glmmjax's .py files (paths and contents), computed once per process."""
    global _source_digest
    if _source_digest is None:
        root = Path(__file__).parent
        h = hashlib.sha256()
        for f in sorted(root.rglob("*.py")):
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
        _source_digest = h.hexdigest()
    return _source_digest


def describe(obj) -> str | None:
    """A description of a static argument that is the same in every process, or None.

    Plain values (None, bool, int, float, str), tuples, lists and dicts of them, and frozen
    dataclasses defined in glmmjax (class name and every field) are described. Anything else
    (a function, a user-defined class) gives None: it cannot be cached.
    """
    if obj is None or isinstance(obj, (bool, int, str)):
        return repr(obj)
    if isinstance(obj, float):
        return float.hex(obj)
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return describe(obj.item())
    if isinstance(obj, (tuple, list)):
        parts = [describe(o) for o in obj]
        return None if None in parts else f"{type(obj).__name__}({','.join(parts)})"
    if isinstance(obj, dict):
        items = [(describe(k), describe(v)) for k, v in sorted(obj.items(), key=lambda kv: repr(kv[0]))]
        return None if any(None in kv for kv in items) else "{" + ",".join(f"{k}:{v}" for k, v in items) + "}"
    cls = type(obj)
    if dataclasses.is_dataclass(obj) and cls.__module__.split(".")[0] == "glmmjax" \
            and cls.__dataclass_params__.frozen:
        parts = []
        for f in dataclasses.fields(obj):
            d = describe(getattr(obj, f.name))
            if d is None:
                return None
            parts.append(f"{f.name}={d}")
        return f"{cls.__module__}.{cls.__qualname__}({','.join(parts)})"
    return None


def _environment() -> str:
    import jaxlib

    cfg = jax.config
    settings = [getattr(cfg, name, None) for name in (
        "jax_enable_x64", "jax_default_matmul_precision", "jax_numpy_rank_promotion", "jax_numpy_dtype_promotion")]
    return "|".join(map(str, [sys.version_info[:2], jax.__version__, jaxlib.__version__, np.__version__,
                              jax.default_backend(), _digest(), *settings]))


def _plain(fn, static, args, kwargs):
    return fn(*args, **static, **kwargs)


def cached_call(fn, static: dict, *args, **kwargs):
    """``fn(*args, **static, **kwargs)``, where ``fn`` is a ``jax.jit`` function whose static
    arguments are the keys of ``static``; with the trace cache on, the traced computation is
    read from (or written to) the cache instead of being traced in this process."""
    directory = _directory()
    if directory is None:
        return _plain(fn, static, args, kwargs)
    leaves, treedef = jax.tree.flatten((args, kwargs))
    if not all(isinstance(x, (jax.Array, np.ndarray)) for x in leaves):
        return _plain(fn, static, args, kwargs)
    avals = tuple((tuple(x.shape), str(x.dtype)) for x in leaves)
    try:
        memo_key = (fn, tuple(sorted(static.items())), treedef, avals, str(directory))
        hash(memo_key)
    except TypeError:
        return _plain(fn, static, args, kwargs)
    runner = _memo.get(memo_key)
    if runner is None:
        with _lock:
            runner = _memo.get(memo_key)
            if runner is None:
                runner = _memo[memo_key] = _runner(directory, fn, static, treedef, leaves, avals)
    if runner is False:
        return _plain(fn, static, args, kwargs)
    return runner(*leaves)


def _runner(directory: Path, fn, static: dict, treedef, leaves, avals):
    """A jitted caller of the exported computation (read, or traced and written), or False."""
    desc = describe(static)
    if desc is None:
        return False
    name = getattr(fn, "__name__", "fn")
    key = hashlib.sha256("\n".join([_environment(), f"{fn.__module__}.{name}", desc, str(treedef),
                                    repr(avals)]).encode()).hexdigest()[:40]
    path = directory / f"{name}-{key}.jaxexp"
    exported = _read(path, key)
    if exported is None:
        def flat(*xs):
            args, kwargs = jax.tree.unflatten(treedef, xs)
            return fn(*args, **static, **kwargs)

        try:
            exported = jax.export.export(jax.jit(flat))(*leaves)
            blob = exported.serialize()
        except Exception:  # something jax.export does not take: trace as usual, every time
            return False
        _write(path, key, blob)
    return jax.jit(exported.call)


_MAGIC = b"glmmjax-trace-v1"


def _read(path: Path, key: str):
    """The exported computation stored at ``path`` for ``key``, or None (none stored, or a
    file that fails its checks: removed, with a warning)."""
    if not path.exists():
        return None
    try:
        raw = path.read_bytes()
        magic, file_key, digest, blob = raw.split(b"\n", 3)
        ok = magic == _MAGIC and file_key.decode() == key and digest.decode() == hashlib.sha256(blob).hexdigest()
    except (OSError, ValueError, UnicodeDecodeError):
        ok, blob = False, b""
    if ok:
        try:
            return jax.export.deserialize(bytearray(blob))
        except Exception:
            ok = False
    from ._warnings import GlmmjaxWarning, warn

    warn(f"glmmjax's trace cache file {path} is damaged or holds another computation; it was removed and the fit "
         "is traced again", GlmmjaxWarning)
    try:
        path.unlink()
    except OSError:
        pass
    return None


def _write(path: Path, key: str, blob) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        blob = bytes(blob)
        tmp.write_bytes(b"\n".join([_MAGIC, key.encode(), hashlib.sha256(blob).hexdigest().encode(), blob]))
        os.replace(tmp, path)
    except OSError:  # a read-only or full cache directory: the fit goes on without it
        pass
