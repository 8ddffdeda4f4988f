"""Reading VisionCore's files: ``DictDataset`` recordings and a session's unit data.

A ``<session>/datasets/<type>.dset`` is what VisionCore's ``DictDataset.save`` writes: a
``torch.save`` of ``{"covariates": {name: tensor}, "metadata": {...}}``. It is loaded with
``weights_only=True`` (tensors, containers, numbers, strings and plain numpy arrays, never
code) and memory-mapped where the file allows, so a multi-gigabyte recording is not read
into memory. A file that needs arbitrary unpickling (a custom class in its metadata) is
refused with a line saying which global it needs, unless the caller allows unsafe loading.

Cluster ids and missing percentages live in the lab's private session object upstream.
Our open input for them is ``<session>/units.npz`` (see README, "Importing VisionCore
recordings"): ``cids`` (N,) and optionally ``missing_pct_times`` (K,) + ``missing_pct``
(K, N); or the same keys in the ``.dset`` metadata.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from trainer.contract.errors import DataError, storage_error

UNITS_FILE = "units.npz"
UNIT_KEYS = ("cids", "missing_pct_times", "missing_pct")
_UNSAFE_HINT = "if you trust this file, pass --allow-unsafe-pickle"


def _numpy_globals() -> list[Any]:
    """What a pickled plain numpy array or scalar needs: its reconstructors and dtypes.

    Object arrays stay refused (their dtype class is left out): they hold pickles.
    """
    from numpy._core import multiarray

    dtypes = [
        getattr(np.dtypes, name)
        for name in dir(np.dtypes)
        if name.endswith("DType") and name != "ObjectDType"
    ]
    return [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype, *dtypes]


def _torch_load(file: Path, unsafe: bool) -> Any:
    """``torch.load`` on the CPU, memory-mapped where the file's format allows it."""
    import torch

    def load(mmap: bool) -> Any:
        if unsafe:
            return torch.load(file, map_location="cpu", weights_only=False, mmap=mmap)
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(file, map_location="cpu", weights_only=True, mmap=mmap)

    try:
        return load(mmap=True)
    except RuntimeError as error:
        if "mmap" not in str(error):  # legacy (non-zip) files cannot be memory-mapped
            raise
        return load(mmap=False)


def load_dset(file: Path, allow_unsafe_pickle: bool = False) -> dict[str, Any]:
    """``{"covariates": {name: ndarray}, "metadata": dict}`` of a VisionCore ``.dset`` file.

    Every problem is a one-line :class:`DataError` naming the file (and the key).
    """
    if not file.is_file():
        raise DataError(file, "missing")
    try:
        data = _torch_load(file, allow_unsafe_pickle)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL (\S+)|but got <class '([^']+)'>", str(error))
        what = next((g for g in found.groups() if g), "?") if found else "a non-tensor object"
        raise DataError(
            file, f"needs arbitrary unpickling to load ({what} is not a tensor or plain"
            f" array, so weights_only loading refuses it); {_UNSAFE_HINT}",
        ) from None  # fmt: skip
    except (ImportError, AttributeError) as error:  # unsafe loading, a class not installed
        raise DataError(
            file, f"unpickling it needs code this environment lacks ({error}); install the"
            " package that defines it, or save the file without that object in its metadata",
        ) from None  # fmt: skip
    except (RuntimeError, EOFError, ValueError, zipfile.BadZipFile, OSError) as error:
        if isinstance(error, OSError) and storage_error(error) is not None:
            raise  # the volume, not the file: the CLI reports it as such
        first = " ".join(str(error).split())[:200]
        problem = f"not a readable torch.save file (truncated or damaged? {first})"
        raise DataError(file, problem) from None
    if not isinstance(data, dict) or not isinstance(data.get("covariates"), dict):
        kind = type(data).__name__ if not isinstance(data, dict) else "a dict without it"
        raise DataError(file, f"covariates: missing ({kind}; not a VisionCore DictDataset file)")
    metadata = data.get("metadata", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise DataError(file, f"metadata: a {type(metadata).__name__}, not a dict")
    covariates = {
        str(key): _as_array(file, str(key), value) for key, value in data["covariates"].items()
    }
    return {"covariates": covariates, "metadata": metadata}


def _as_array(file: Path, key: str, value: Any) -> np.ndarray:
    """A covariate as a numpy array sharing the loaded (memory-mapped) storage."""
    import torch

    if isinstance(value, np.ndarray):
        array = value
    elif isinstance(value, torch.Tensor):
        if value.dtype in (torch.bfloat16, torch.complex32) or value.is_quantized:
            raise DataError(file, f"covariates.{key}: dtype {value.dtype} has no numpy form")
        array = value.detach().cpu().numpy()
    else:
        raise DataError(file, f"covariates.{key}: a {type(value).__name__}, not a tensor")
    if array.dtype.hasobject:
        raise DataError(file, f"covariates.{key}: holds Python objects, not numbers")
    return array


def load_units(
    folder: Path, n_units: int, metadata: dict[Path, dict[str, Any]]
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, str]:
    """``(cids, missing_pct_times, missing_pct, where they came from)`` of one session.

    From ``<folder>/units.npz``; else from the ``.dset`` metadata (every file that has
    them must agree); else ``cids`` = ``0..N-1`` (robs column numbers, which is what
    VisionCore's dataset configs call ``cids``) and no missing percentages.
    """
    file = folder / UNITS_FILE
    if file.exists():
        try:
            with np.load(file, allow_pickle=False) as npz:
                found = {key: npz[key] for key in UNIT_KEYS if key in npz.files}
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
            first = " ".join(str(error).split())[:160]
            raise DataError(file, f"not a readable .npz of plain arrays ({first})") from None
        if "cids" not in found:
            raise DataError(file, f"cids: missing (has: {', '.join(sorted(found)) or 'nothing'})")
        return (*_checked_units(file, found, n_units), str(file))
    for source, meta in metadata.items():
        if "cids" in meta:
            found = {key: np.asarray(meta[key]) for key in UNIT_KEYS if key in meta}
            units = _checked_units(source, found, n_units, prefix="metadata.")
            for other, other_meta in metadata.items():
                if "cids" in other_meta and not np.array_equal(other_meta["cids"], units[0]):
                    raise DataError(other, f"metadata.cids: differ from those in {source.name}")
            return (*units, f"{source} metadata")
    return np.arange(n_units, dtype=np.int64), None, None, "robs columns (no units.npz)"


def _checked_units(
    file: Path, found: dict[str, np.ndarray], n_units: int, prefix: str = ""
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    cids = found["cids"]
    if cids.ndim != 1 or (cids.dtype.kind not in "iu" and not _integral(cids)):
        raise DataError(file, f"{prefix}cids: {cids.dtype} shape {cids.shape}, expected (N,) ints")
    if cids.shape[0] != n_units:
        raise DataError(file, f"{prefix}cids: {cids.shape[0]} ids, robs has {n_units} columns")
    if np.unique(cids).size != cids.size:
        raise DataError(file, f"{prefix}cids: repeated unit ids")
    has = [key for key in UNIT_KEYS[1:] if key in found]
    if len(has) == 1:
        other = next(key for key in UNIT_KEYS[1:] if key not in found)
        raise DataError(file, f"{prefix}{other}: missing (needed with {has[0]})")
    if not has:
        return cids.astype(np.int64), None, None
    times, pct = found["missing_pct_times"], found["missing_pct"]
    if times.ndim != 1 or times.dtype.kind not in "fiu" or np.any(np.diff(times) <= 0):
        raise DataError(file, f"{prefix}missing_pct_times: expected increasing (K,) seconds")
    if pct.dtype.kind not in "fiu" or pct.shape != (times.shape[0], n_units):
        raise DataError(
            file,
            f"{prefix}missing_pct: {pct.dtype} shape {pct.shape}, expected"
            f" ({times.shape[0]}, {n_units}) percentages",
        )
    return cids.astype(np.int64), times.astype(np.float64), pct.astype(np.float32)


def _integral(array: np.ndarray) -> bool:
    return array.dtype.kind == "f" and bool(np.all(np.isfinite(array) & (array == np.round(array))))
