"""The bot's own data passes `rasa data validate`, and every response exists in three languages.

Rasa's validator cannot see inside custom actions, so it warns about responses that
only actions send and intents that only buttons or the firstline service trigger.
Those warnings are accepted only when the action code really uses that response or
the intent really is external; any other warning fails.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RASA = Path(sys.executable).parent / "rasa"
ACTION_SOURCE = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "actions").glob("*.py"))
#: Triggered by buttons (choose_article) or by the firstline service (EXTERNAL_*).
NOT_TYPED_BY_USERS = {"choose_article"}
#: Sent by Rasa's own action_default_fallback when no policy is confident.
RASA_DEFAULTS = {"utter_default"}


def test_rasa_data_validate_has_no_unexplained_warnings() -> None:
    result = subprocess.run(
        [str(RASA), "data", "validate", "--domain", "bot/domain", "--data", "bot/data", "--config", "config.yml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"RASA_TELEMETRY_ENABLED": "false", "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    warnings = re.findall(r"UserWarning: (.*)", output)
    unexplained = []
    for warning in warnings:
        utterance = re.match(r"The utterance '(\w+)' is not used in any story or rule", warning)
        if utterance and (
            f'"{utterance.group(1)}"' in ACTION_SOURCE
            or utterance.group(1).startswith("utter_ask_")
            or utterance.group(1) in RASA_DEFAULTS
        ):
            continue  # sent by an action, or asked by a form for its slot
        intent = re.match(r"The intent '(\w+)' is listed in the domain file, but is not found in the NLU", warning)
        if intent and (intent.group(1).startswith("EXTERNAL_") or intent.group(1) in NOT_TYPED_BY_USERS):
            continue
        unexplained.append(warning)
    assert unexplained == []


def test_every_response_has_english_latvian_and_russian() -> None:
    responses = yaml.safe_load((ROOT / "bot" / "domain" / "responses.yml").read_text(encoding="utf-8"))["responses"]
    for name, variants in responses.items():
        languages = {
            next((c["value"] for c in v.get("condition", []) if c["name"] == "language"), "en") for v in variants
        }
        assert languages == {"en", "lv", "ru"}, name
        with_buttons = [len(v.get("buttons", [])) for v in variants]
        assert len(set(with_buttons)) == 1, f"{name}: the languages offer different buttons"


def test_every_response_an_action_sends_exists() -> None:
    responses = yaml.safe_load((ROOT / "bot" / "domain" / "responses.yml").read_text(encoding="utf-8"))["responses"]
    used = set(re.findall(r'response="(utter_\w+)"', ACTION_SOURCE))
    assert used - set(responses) == set()
