"""The real Repurpose-10K val/test files validate and give the field guide's counts."""

import pytest

from repurpose.cli import main as cli_main

from .conftest import SHARED_SPLITS

pytestmark = pytest.mark.skipif(
    not (SHARED_SPLITS / "val.json").is_file(),
    reason=f"real split files not present at {SHARED_SPLITS}",
)


def test_validate_real_val_and_test(capsys):
    rc = cli_main(["validate", str(SHARED_SPLITS / "val.json"), str(SHARED_SPLITS / "test.json")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "windows: 2,243 from 2 file(s), 2,110 unique videos, 23,946 clips" in out
    assert "median 1,303 s; 878 are exactly 1,800 s; 564 start past 0" in out
    assert "clips per window: mean 10.7 (1-34)" in out
    assert "clip length: median 36.3 s, p10 18.8 s, p90 65.5 s, min 0.35 s, max 229.5 s" in out
    assert "coverage min: 0.050" in out
    assert "val: 2, test: 7" in out
    assert "test+val: 63" in out
