"""replace_nul: NUL in raw text becomes U+FFFD whatever the column's text dtype; everything else is untouched."""

from __future__ import annotations

import pandas as pd
import pytest

from salesforce_sync.sync.text_values import replace_nul


@pytest.mark.parametrize("dtype", [object, "str"])
def test_nul_is_replaced_in_object_and_string_columns(dtype: object) -> None:
    raw = pd.DataFrame({"Id": ["a", "b", "c"], "LastName": ["Nul\x00Name", "", None],
                        "Company": ["Acme", "\x00\x00", "Plain"]}, dtype=dtype)

    repaired, changed = replace_nul(raw)

    assert changed == 2
    assert repaired["LastName"].tolist()[:2] == ["Nul\ufffdName", ""] and pd.isna(repaired["LastName"].iloc[2])
    assert repaired["Company"].tolist() == ["Acme", "\ufffd\ufffd", "Plain"]
    assert repaired["Id"].tolist() == ["a", "b", "c"]


def test_a_frame_without_nul_comes_back_untouched() -> None:
    raw = pd.DataFrame({"Id": ["a", None], "Score": [1.5, None], "Name": ["back\\slash", "tab\there"]}, dtype=object)

    repaired, changed = replace_nul(raw)

    assert changed == 0 and repaired is raw
