"""Chunk validation: bad input is refused before the database sees it, with the culprit named."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from salesforce_sync.store import StoreInputError
from salesforce_sync.store.chunks import prepare_chunk

ChunkFactory = Callable[..., pd.DataFrame]


def test_valid_chunk_is_normalised(make_chunk: ChunkFactory) -> None:
    chunk = make_chunk(
        ["A", "B"],
        modified=["2024-05-01T12:00:00+02:00", "2024-05-01T10:00:00.123456789Z"],
        email=["", "b@example.com"],
        unsubscribed=[np.True_, None],
        deleted=[np.False_, True],
        properties=[None, {"n": np.int64(3)}],
    )

    prepared = prepare_chunk("int1", chunk)

    rows = prepared.rows
    assert prepared.duplicates_dropped == 0
    assert rows["email"].tolist() == [None, "b@example.com"]
    assert str(rows["unsubscribed"].dtype) == "boolean"
    assert rows["unsubscribed"].iloc[0]
    assert pd.isna(rows["unsubscribed"].iloc[1])
    assert rows["deleted"].tolist() == [False, True]
    assert rows["properties"].tolist() == ["{}", '{"n":3}']
    assert str(rows["sf_modified_at"].dtype) == "datetime64[us, UTC]"
    assert rows["sf_modified_at"].tolist() == [
        pd.Timestamp("2024-05-01T10:00:00Z"),
        pd.Timestamp("2024-05-01T10:00:00.123456Z"),
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda chunk: chunk.drop(columns=["phone"]), r"missing: \['phone'\]"),
        (lambda chunk: chunk.assign(Email="x"), r"unexpected: \['Email'\]"),
        (
            lambda chunk: chunk.assign(sf_modified_at=chunk["sf_modified_at"].dt.tz_localize(None)),
            r"'sf_modified_at' must hold timezone-aware timestamps",
        ),
        (
            lambda chunk: chunk.assign(sf_modified_at=["2024-05-01T10:00:00Z"] * len(chunk)),
            r"'sf_modified_at' must hold timezone-aware timestamps",
        ),
        (
            lambda chunk: chunk.assign(deleted=["false", "true"]),
            r"object 'Lead', row 0 \(external_id 'sf_int1_Lead_A'\): field 'deleted' must be true/false, got 'false'",
        ),
        (lambda chunk: chunk.assign(deleted=[False, None]), r"row 1 .*field 'deleted' is required but empty"),
        (lambda chunk: chunk.assign(unsubscribed=[1, 0]), r"field 'unsubscribed' must be true/false, got 1"),
        (lambda chunk: chunk.assign(email=["a@x.com", 42]), r"row 1 .*field 'email' must be text, got 42"),
        (lambda chunk: chunk.assign(salesforce_id=["A", ""]), r"field 'salesforce_id' is required but empty"),
        (
            lambda chunk: chunk.assign(external_id=["sf_int2_Lead_A", "sf_int1_Lead_B"]),
            r"integration 'int1', object 'Lead': external_id 'sf_int2_Lead_A' should be 'sf_int1_Lead_A'",
        ),
        (
            lambda chunk: chunk.assign(properties=[{"ok": 1}, '{"already": "json"}']),
            r"row 1 .*field 'properties' must be a dict of property values, got str",
        ),
        (
            lambda chunk: chunk.assign(properties=[{"Revenue": float("nan")}, {}]),
            r"row 0 .*field 'properties' cannot be stored as JSON .*'Revenue': nan",
        ),
        (
            lambda chunk: chunk.assign(properties=[{}, {"when": object()}]),
            r"row 1 .*field 'properties' property value <object .*> of type object cannot be stored as JSON",
        ),
    ],
)
def test_bad_chunks_are_refused_with_the_culprit_named(make_chunk: ChunkFactory, change, message: str) -> None:
    chunk = change(make_chunk(["A", "B"]))

    with pytest.raises(StoreInputError, match=message) as refused:
        prepare_chunk("int1", chunk)

    assert "integration 'int1'" in str(refused.value)


def test_sf_modified_at_must_be_present(make_chunk: ChunkFactory) -> None:
    chunk = make_chunk(["A", "B"])
    chunk.loc[1, "sf_modified_at"] = pd.NaT

    with pytest.raises(
        StoreInputError, match=r"row 1 \(external_id 'sf_int1_Lead_B'\): field 'sf_modified_at' is required"
    ):
        prepare_chunk("int1", chunk)


def test_duplicate_keys_with_equal_timestamps_keep_the_last_row(make_chunk: ChunkFactory) -> None:
    chunk = make_chunk(["A", "A", "A"], first_name=["first", "second", "third"])

    prepared = prepare_chunk("int1", chunk)

    assert prepared.duplicates_dropped == 2
    assert prepared.rows["first_name"].tolist() == ["third"]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("first_name", "Ada\x00"),
        ("properties", {"Notes": "before\x00after"}),
        ("properties", {"key\x00": 1}),
        ("properties", {"Notes": "\\\x00"}),
    ],
)
def test_nul_characters_are_refused(make_chunk: ChunkFactory, column: str, value: object) -> None:
    chunk = make_chunk(["A", "B"])
    chunk[column] = pd.Series([chunk.at[0, column], value], dtype=object)

    with pytest.raises(StoreInputError, match=rf"row 1 .*field '{column}' contains a NUL character"):
        prepare_chunk("int1", chunk)


def test_literal_backslash_u0000_text_is_not_a_nul(make_chunk: ChunkFactory) -> None:
    chunk = make_chunk(["A"], properties=[{"Notes": "C:\\u0000 is a path, not a NUL"}])

    assert prepare_chunk("int1", chunk).rows["properties"].tolist() == ['{"Notes":"C:\\\\u0000 is a path, not a NUL"}']
