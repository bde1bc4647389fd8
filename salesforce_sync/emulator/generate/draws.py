"""Deterministic draws: counter-based hashes keyed by per-seed salts, record-role shuffles and the
vectorised value helpers (ids, optional values, batches) every object generator uses."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from salesforce_sync.emulator.ids import KEY_PREFIXES

BATCH_SIZE = 10_000
ID_POD = "5g"
DELETED_SHARE = 0.01
Columns = dict[str, Any]  # stored field -> numpy array of the batch's values, or one value for the whole batch

# ---- deterministic draws -----------------------------------------------------------------------

MASK64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15


def mix64(value: int) -> int:
    """splitmix64's finaliser on a Python int: a well-spread 64-bit salt from any integer."""
    z = value & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def hash64(salt: int, idx: np.ndarray) -> np.ndarray:
    """splitmix64 of (salt + index * golden gamma), element-wise, as uint64 (wrapping is intended)."""
    z = idx.astype(np.uint64) * np.uint64(GAMMA) + np.uint64(salt)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class Salted(Protocol):
    """What draws need of an org's plan: a salt per label, derived from its seed."""

    def salt(self, label: str) -> int: ...


class Draws:
    """Independent uniform draws for a set of records of one object, one stream per field name."""

    def __init__(self, plan: Salted, space: str, idx: np.ndarray) -> None:
        self.plan, self.space, self.idx = plan, space, idx

    def bits(self, name: str) -> np.ndarray:
        return hash64(self.plan.salt(f"{self.space}.{name}"), self.idx)

    def unit(self, name: str) -> np.ndarray:
        return (self.bits(name) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))

    def chance(self, name: str, probability: float) -> np.ndarray:
        return self.unit(name) < probability

    def below(self, name: str, bound: int | np.ndarray) -> np.ndarray:
        """Integers in [0, bound); `bound` may differ per record."""
        bound = np.asarray(bound, dtype=np.uint64)
        return (self.bits(name) % bound).astype(np.int64)

    def pick(self, name: str, pool: np.ndarray) -> np.ndarray:
        return pool[self.below(name, len(pool))]

    def weighted(self, name: str, cumulative: np.ndarray) -> np.ndarray:
        """Index of the bucket each draw falls in, for cumulative weights ending in 1."""
        return np.searchsorted(cumulative, self.unit(name), side="right")


@dataclass(frozen=True)
class Shuffle:
    """An affine bijection of range(n) mapping record index <-> rank; the top `deleted` ranks are soft-deleted."""

    n: int
    multiplier: int
    offset: int
    inverse: int
    deleted: int

    @classmethod
    def build(cls, rng: random.Random, n: int) -> Shuffle:
        if n <= 1:
            return cls(max(n, 1), 1, 0, 1, 0)
        multiplier = coprime_stride(rng, n)
        return cls(n, multiplier, rng.randrange(n), pow(multiplier, -1, n), round(DELETED_SHARE * n))

    @property
    def live(self) -> int:
        return self.n - self.deleted

    def rank(self, idx: np.ndarray) -> np.ndarray:
        return (idx * self.multiplier + self.offset) % self.n

    def index(self, rank: np.ndarray) -> np.ndarray:
        return ((rank - self.offset) * self.inverse) % self.n


def coprime_stride(rng: random.Random, n: int) -> int:
    """A multiplier in [1, n) coprime to n, so i -> i * stride mod n is a bijection that scatters neighbours."""
    if n <= 3:
        return 1
    stride = rng.randrange(n // 3 + 1, n)
    while math.gcd(stride, n) != 1:
        stride = stride % (n - 1) + 1
    return stride


# ---- vectorised value helpers ------------------------------------------------------------------

BASE62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
HEX = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)
CHECKSUM = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", dtype=np.uint8)


def fixed_digits(values: np.ndarray, alphabet: np.ndarray, width: int) -> np.ndarray:
    """Fixed-width, most-significant-first digits of non-negative ints as an (n, width) uint8 ASCII matrix."""
    out = np.empty((len(values), width), dtype=np.uint8)
    rest = values.astype(np.int64)
    for position in range(width - 1, -1, -1):
        rest, digit = np.divmod(rest, len(alphabet))
        out[:, position] = alphabet[digit]
    if rest.any():
        raise ValueError(f"generate_org: record number {int(values.max())} does not fit {width} digits")
    return out


def ascii_strings(chars: np.ndarray) -> np.ndarray:
    """An (n, width) uint8 ASCII matrix as an object array of str."""
    width = chars.shape[1]
    return np.ascontiguousarray(chars).view(f"S{width}").ravel().astype(f"U{width}").astype(object)


def record_ids(object_name: str, idx: np.ndarray) -> np.ndarray:
    """18-char ids of records idx (record number idx + 1), equal to ids.make_id(prefix, idx + 1, ID_POD)."""
    chars = np.empty((len(idx), 18), dtype=np.uint8)
    chars[:, :6] = np.frombuffer((KEY_PREFIXES[object_name] + ID_POD + "0").encode(), dtype=np.uint8)
    chars[:, 6:15] = fixed_digits(np.asarray(idx) + 1, BASE62, 9)
    upper = ((chars[:, :15] >= ord("A")) & (chars[:, :15] <= ord("Z"))).reshape(-1, 3, 5)
    chars[:, 15:] = CHECKSUM[(upper * (1 << np.arange(5))).sum(axis=2)]
    return ascii_strings(chars)


def maybe(present: np.ndarray, values: Any) -> np.ndarray:
    """values where present, None elsewhere (an object array)."""
    return np.where(present, values, None)


def between(draws: Draws, name: str, low: np.ndarray, high: np.ndarray | int) -> np.ndarray:
    """A whole second in [low, high] per record."""
    return low + ((high - low) * draws.unit(name)).astype(np.int64)


def batches(count: int) -> Iterator[np.ndarray]:
    for start in range(0, count, BATCH_SIZE):
        yield np.arange(start, min(count, start + BATCH_SIZE), dtype=np.int64)


def object_array(*values: Any) -> np.ndarray:
    """A 1-d object array of the values (np.array would nest tuples into 2-d)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def sparse(present: np.ndarray, make: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """`make(present)` (values for the present rows only) where present, None elsewhere: for rare values too
    costly to build for every record of a million."""
    out = np.full(len(present), None, dtype=object)
    if present.any():
        out[present] = make(present)
    return out


def external_keys(draws: Draws, prefix: str, share: float) -> np.ndarray:
    """Keys an outside system stamped on the share of records it wrote ('aud-3F2A...'); None on the rest."""
    bits = draws.bits(f"{prefix}Key")
    return sparse(draws.chance(f"Has{prefix}Key", share), lambda rows: prefix + "-" + ascii_strings(
        fixed_digits((bits[rows] >> np.uint64(1)).astype(np.int64), HEX, 16)))
