"""The real-data example runs from the command line at small draws and its reports render."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wage_panel_example_runs_and_reports(tmp_path):
    groupfx = Path(sys.executable).with_name("groupfx")
    env = os.environ | {"OUT": str(tmp_path), "GROUPFX": str(groupfx), "DRAWS": "60", "TUNE": "60",
                        "CHAINS": "2"}  # fmt: skip
    result = subprocess.run(
        ["bash", str(ROOT / "examples" / "wage_panel.sh")], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    frame = pd.read_csv(tmp_path / "wage_panel.csv")
    assert frame.shape == (4360, 12) and frame["nr"].nunique() == 545
    for outcome, method in (("union", "ConditionalLogit"), ("lwage", "PanelOLS")):
        out = tmp_path / outcome
        page = (out / "report.html").read_text()
        assert "Frequentist cross-check" in page and "married" in page
        # self-contained: no link out (the embedded base64 images may spell "http" by chance)
        assert not re.search(r'(src|href)="https?://', page)
        table = pd.read_csv(out / "estimates.csv", keep_default_na=False)
        bxy = table[table.parameter == "bxy"]
        assert set(bxy.term) == {"married", "exper"}  # sorted into x by the data
        assert set(table[table.parameter == "bzy"].term) == {"educ", "black", "hisp"}
        cross = pd.read_csv(out / "crosscheck.csv")
        assert cross.method.str.contains(method).all() and cross.estimate.notna().all()
        data = pd.read_csv(out / "data.csv")
        assert data["nr"].nunique() == 545  # person ids kept as labels
    two_way = tmp_path / "lwage-two-way"
    page = (two_way / "report.html").read_text()
    assert "grouped by nr and year" in page and "8 periods (year, a balanced panel)" in page
    table = pd.read_csv(two_way / "estimates.csv", keep_default_na=False)
    assert set(table[table.parameter == "bxy"].term) == {"married", "union", "expersq"}
