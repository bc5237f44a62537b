"""The `firstline kb` commands as an editor uses them, on a copy of the demo data directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from firstline.cli import app
from firstline.config import REPO_ROOT

pytestmark = pytest.mark.slow


@pytest.fixture
def data_dir(demo_data_template: Path, tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    shutil.copytree(demo_data_template, directory)
    return directory


def firstline(data_dir: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"FIRSTLINE_DATA_DIR": str(data_dir)}, input=stdin)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_a_question_is_searched_as_the_bot_would(data_dir: Path) -> None:
    code, out, _ = firstline(data_dir, "kb", "search", "aizmirsu paroli", "--lang", "lv", "--json")

    assert code == 0
    found = json.loads(out)
    assert found["decision"] in ("answer", "clarify")
    assert found["results"][0]["article_id"] == "password-reset-lv"


def test_eval_prints_the_metrics_overall_and_per_language(data_dir: Path) -> None:
    code, out, _ = firstline(data_dir, "kb", "eval", str(REPO_ROOT / "content" / "eval"), "--split", "test", "--json")

    assert code == 0
    report = json.loads(out)
    keys = {"n", "in_scope_accuracy", "oos_recall", "oos_precision", "top3_accuracy", "mrr", "p50_ms", "p95_ms"}
    assert keys <= report.keys()
    assert report["n"] == 276
    assert set(report["languages"]) == {"en", "lv", "ru"}
    assert all(keys <= row.keys() and row["n"] == 92 for row in report["languages"].values())
    assert report["top3_accuracy"] > 80  # the demo index answers its own test questions


def test_export_then_import_changes_nothing(data_dir: Path, tmp_path: Path) -> None:
    exported = tmp_path / "kb.jsonl"
    code, out, _ = firstline(data_dir, "kb", "export", str(exported))
    assert code == 0 and "wrote 108 articles" in out

    code, out, _ = firstline(data_dir, "kb", "import", str(exported), "--replace")

    assert code == 0
    assert "0 created, 0 updated, 108 unchanged, 0 deleted" in out
    assert "up to date" in out


def test_an_invalid_import_names_each_problem_and_changes_nothing(data_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    good = {"id": "vpn-new-en", "language": "en", "title": "VPN", "body": "Open GlobalProtect.", "questions": []}
    lines = [
        good,
        {**good, "title": "VPN again"},
        {**good, "id": "x-xx", "language": "xx"},
        {**good, "id": "e", "body": " "},
    ]
    bad.write_text("\n".join(json.dumps(line) for line in lines) + "\n")

    code, _, err = firstline(data_dir, "kb", "import", str(bad))

    assert code == 1
    assert f"{bad}:2: " in err and "duplicate" in err
    assert f"{bad}:3: " in err and "language" in err
    assert f"{bad}:4: " in err and "body" in err
    assert "nothing was changed" in err
    code, out, _ = firstline(data_dir, "kb", "export", str(tmp_path / "after.jsonl"))
    assert "wrote 108 articles" in out


def test_adapting_with_a_file_of_no_declined_questions_is_refused(data_dir: Path, tmp_path: Path) -> None:
    answered = tmp_path / "answered.jsonl"
    answered.write_text(json.dumps({"query": "vpn", "language": "en", "expected": "vpn-connect-en"}) + "\n")

    code, _, err = firstline(data_dir, "kb", "adapt", "--negatives", str(answered))

    assert code == 1
    assert 'has no query with "expected": null' in err
