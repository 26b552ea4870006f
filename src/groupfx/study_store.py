"""Where a study keeps its results: one Parquet file per finished task, written atomically.

Layout of a study folder::

    study.json                      the scenarios and settings (a resumed study must match them)
    results/<scenario>/<replicate>-<model>.parquet    one file per finished task

A task whose file exists is done; a study killed at any moment loses at most the fits that were running,
and ``--resume`` fits only what is missing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from groupfx.errors import InputError
from groupfx.files import atomic_path
from groupfx.scenarios import Scenario
from groupfx.study import RESULT_COLUMNS, StudySettings, Task

RECORD = "study.json"


def result_path(out_dir: Path, task: Task) -> Path:
    """The file of one task's results."""
    return out_dir / "results" / f"{task.key}.parquet"


def write_result(out_dir: Path, task: Task, rows: pd.DataFrame) -> Path:
    """Write one task's rows atomically (a temporary file renamed into place)."""
    path = result_path(out_dir, task)
    with atomic_path(path) as tmp:
        rows.to_parquet(tmp, index=False)
    return path


def done_keys(out_dir: Path) -> set[str]:
    """Keys of the tasks whose results are on disk."""
    root = out_dir / "results"
    if not root.is_dir():
        return set()
    return {
        f"{path.parent.name}/{path.stem}"
        for path in root.glob("*/*.parquet")
        if not path.name.startswith(".")
    }


def read_results(out_dir: Path) -> pd.DataFrame:
    """Every finished task's rows, sorted by scenario, replicate, model and parameter."""
    paths = sorted((out_dir / "results").glob("*/*.parquet"))
    paths = [path for path in paths if not path.name.startswith(".")]
    if not paths:
        return pd.DataFrame(columns=list(RESULT_COLUMNS))
    frame = pd.concat([pd.read_parquet(path) for path in paths], ignore_index=True)
    return frame.sort_values(["scenario", "replicate", "model", "parameter"], ignore_index=True)


def study_record(scenarios: Sequence[Scenario], settings: StudySettings) -> dict[str, object]:
    """What defines a study's results (its replicates count aside: a resumed study may add replicates)."""
    values = settings.to_dict()
    values.pop("replicates")
    return {"settings": values, "scenarios": [scenario.to_dict() for scenario in scenarios]}


def prepare(out_dir: Path, scenarios: Sequence[Scenario], settings: StudySettings, resume: bool) -> set[str]:
    """Create or check the study folder and return the keys already done.

    Raises
    ------
    InputError
        If the folder holds results and ``resume`` is false, or holds a different study.
    """
    record = study_record(scenarios, settings)
    path = out_dir / RECORD
    if path.exists():
        if not resume:
            raise InputError(
                f"{out_dir} already holds a study; pass --resume to finish it, or choose another --out."
            )
        previous = json.loads(path.read_text(encoding="utf-8"))
        if previous != json.loads(json.dumps(record)):
            raise InputError(
                f"{out_dir} holds a study with other scenarios or settings; resume it with the same"
                " scenarios, models, draws, tune, chains and seed, or choose another --out."
            )
        return done_keys(out_dir)
    if (out_dir / "results").exists() and done_keys(out_dir):
        raise InputError(f"{out_dir} holds results without {RECORD}; choose another --out.")
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2), encoding="utf-8")
    return set()
