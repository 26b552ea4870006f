"""Where a study keeps its results: one Parquet file per finished task, written atomically.

Layout of a study folder::

    .groupfx-output                 the marker of a groupfx study folder
    study.json                      the scenarios and settings (a resumed study must match them)
    results/<scenario>/<replicate>-<model>.parquet    one file per finished task
                                    (<replicate>-<model>-two-way.parquet: a two-way fit)

A task whose file exists is done; a study killed at any moment loses at most the fits that were running,
and ``--resume`` fits only what is missing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import MISSING, fields
from pathlib import Path

import pandas as pd

from groupfx.errors import InputError
from groupfx.study.scenarios import Scenario
from groupfx.study.tasks import RESULT_COLUMNS, StudySettings, Task
from groupfx.util.files import MARKER, atomic_path, output_kind, write_marker

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
    if "two_way" not in frame:  # results of a study made before two-way fits: all one-way
        frame.insert(list(RESULT_COLUMNS).index("two_way"), "two_way", False)
    frame["two_way"] = frame["two_way"].eq(True)  # missing in a mix of old and new files: one-way
    return frame.sort_values(["scenario", "replicate", "model", "two_way", "parameter"], ignore_index=True)


def study_record(scenarios: Sequence[Scenario], settings: StudySettings) -> dict[str, object]:
    """What defines a study's results (its replicates count aside: a resumed study may add replicates)."""
    values = settings.to_dict()
    values.pop("replicates")
    return {"settings": values, "scenarios": [scenario.to_dict() for scenario in scenarios]}


def _shown(value: object) -> str:
    if isinstance(value, list):
        return ",".join(str(item) for item in value) or "none"  # as --models takes them
    return str(value)


def record_differences(previous: dict[str, object], record: dict[str, object]) -> list[str]:
    """What differs between a study's record and this run's, each as ``"what: A in the study, B now"``."""
    differences = []
    old_settings, new_settings = previous.get("settings", {}), record["settings"]
    for key in dict.fromkeys([*new_settings, *old_settings]):
        if old_settings.get(key) != new_settings.get(key):
            old, new = old_settings.get(key, "unset"), new_settings.get(key, "unset")
            differences.append(f"{key}: {_shown(old)} in the study, {_shown(new)} now")
    # a field a study's record lacks (one added to Scenario since) held its default then
    defaults = {f.name: f.default for f in fields(Scenario) if f.default is not MISSING}
    old_scenarios = {item.get("name"): defaults | item for item in previous.get("scenarios", [])}
    new_scenarios = {item["name"]: item for item in record["scenarios"]}
    if list(old_scenarios) != list(new_scenarios):
        differences.append(
            f"scenarios: {_shown(list(old_scenarios))} in the study, {_shown(list(new_scenarios))} now"
        )
    for name in (name for name in new_scenarios if name in old_scenarios):
        old, new = old_scenarios[name], new_scenarios[name]
        for key in dict.fromkeys([*new, *old]):
            if old.get(key) != new.get(key):
                was, now = old.get(key, "unset"), new.get(key, "unset")
                differences.append(f"scenario {name} {key}: {was!r} in the study, {now!r} now")
    return differences


def existing_results(
    out_dir: Path, scenarios: Sequence[Scenario], settings: StudySettings, resume: bool
) -> set[str]:
    """Check the study folder without writing anything; return the keys of the tasks already done.

    A new study needs a folder that does not exist or is empty; ``resume`` needs a study folder (with
    :data:`groupfx.util.files.MARKER` and ``study.json``) of the same scenarios and settings.

    Raises
    ------
    InputError
        One line: the folder is not a study, already holds one (and ``resume`` is false), or holds a study
        with other settings (each difference named with both values).
    """
    out_dir = Path(out_dir)
    path = out_dir / RECORD
    is_study = output_kind(out_dir) == "study"
    if resume:
        if not out_dir.exists():
            raise InputError(
                f"There is no study in {out_dir} to resume (the folder does not exist); drop --resume to"
                " start one there, or give the folder of the study to resume."
            )
        if not is_study or not path.is_file():
            raise InputError(
                f"{out_dir} is not a groupfx study (no {RECORD} and {MARKER} in it); drop --resume to start a"
                " new study in a new --out, or give the folder of the study to resume."
            )
    elif path.exists() and is_study:
        raise InputError(
            f"{out_dir} already holds a study; pass --resume to finish it, or choose another --out."
        )
    elif out_dir.exists() and not is_study and not (out_dir.is_dir() and not any(out_dir.iterdir())):
        raise InputError(
            f"{out_dir} exists and is not a groupfx study folder; groupfx writes only into folders it made:"
            " choose a new --out."
        )
    if not resume:
        if (out_dir / "results").exists() and done_keys(out_dir):
            raise InputError(f"{out_dir} holds results without {RECORD}; choose another --out.")
        return set()
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"{path} cannot be read ({error}); the study cannot be resumed.") from None
    differences = record_differences(previous, json.loads(json.dumps(study_record(scenarios, settings))))
    if differences:
        raise InputError(
            f"{out_dir} holds a study with other settings ({'; '.join(differences)}); resume it with the"
            " study's settings, or choose another --out."
        )
    return done_keys(out_dir)


def start_study(out_dir: Path, scenarios: Sequence[Scenario], settings: StudySettings) -> None:
    """Make the study folder, mark it and write its record (a resumed study's folder is left as it is)."""
    out_dir = Path(out_dir)
    if (out_dir / RECORD).exists():
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    write_marker(out_dir, "study")
    with atomic_path(out_dir / RECORD) as tmp:
        tmp.write_text(json.dumps(study_record(scenarios, settings), indent=2), encoding="utf-8")


def prepare(out_dir: Path, scenarios: Sequence[Scenario], settings: StudySettings, resume: bool) -> set[str]:
    """Check the study folder (:func:`existing_results`), create it if new, and return the keys done.

    Raises
    ------
    InputError
        See :func:`existing_results`.
    """
    done = existing_results(out_dir, scenarios, settings, resume)
    start_study(out_dir, scenarios, settings)
    return done
