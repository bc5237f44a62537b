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
import unicodedata
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


# -- NLU training data and conversation tests ------------------------------------------
NLU_DIR = ROOT / "bot" / "data" / "nlu"
LANGUAGES = ("en", "lv", "ru")
HOLDOUT = ROOT / "tests" / "bot" / "nlu_holdout.yml"
#: Real, varied examples each intent needs in every language.
MIN_EXAMPLES = 15
#: Conversation tests (tests/bot/test_<language>.yml) each language needs.
MIN_STORIES = 30


def _normalised(text: str) -> str:
    """Lower case, without entity markup, punctuation and diacritics ("Jā!" and "ja" are one example)."""
    text = re.sub(r"\[([^\]]+)\](\{[^}]*\}|\([^)]*\))", r"\1", text).lower().replace("ё", "е")
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def _examples(path: Path) -> list[tuple[str, str]]:
    """(intent, example) in file order."""
    rows = []
    for block in yaml.safe_load(path.read_text(encoding="utf-8"))["nlu"]:
        if "intent" in block:
            for line in block["examples"].splitlines():
                if line.strip().startswith("- "):
                    rows.append((block["intent"], line.strip()[2:]))
    return rows


def test_every_intent_has_enough_examples_in_every_language() -> None:
    domain = yaml.safe_load((ROOT / "bot" / "domain" / "core.yml").read_text(encoding="utf-8"))
    typed = [i for i in domain["intents"] if not i.startswith("EXTERNAL_") and i not in NOT_TYPED_BY_USERS]
    for language in LANGUAGES:
        counts: dict[str, int] = {}
        for intent, _ in _examples(NLU_DIR / f"{language}.yml"):
            counts[intent] = counts.get(intent, 0) + 1
        too_few = {i: counts.get(i, 0) for i in typed if counts.get(i, 0) < MIN_EXAMPLES}
        assert too_few == {}, f"{language}: fewer than {MIN_EXAMPLES} examples"


def test_no_example_belongs_to_two_intents() -> None:
    seen: dict[str, str] = {}
    clashes = []
    for language in LANGUAGES:
        for intent, example in _examples(NLU_DIR / f"{language}.yml"):
            other = seen.setdefault(_normalised(example), intent)
            if other != intent:
                clashes.append((example, other, intent))
    assert clashes == []


def test_held_out_examples_are_not_trained_on() -> None:
    trained = {_normalised(e) for language in LANGUAGES for _, e in _examples(NLU_DIR / f"{language}.yml")}
    leaked = [e for _, e in _examples(HOLDOUT) if _normalised(e) in trained]
    assert leaked == []


def test_every_language_has_enough_conversation_tests() -> None:
    for language in LANGUAGES:
        stories = yaml.safe_load((ROOT / "tests" / "bot" / f"test_{language}.yml").read_text(encoding="utf-8"))
        assert len(stories["stories"]) >= MIN_STORIES, language
        for story in stories["stories"]:
            for step in story["steps"]:
                if "user" in step:
                    assert step.get("intent"), f"{story['story']}: a user turn without an intent"


def test_diet_runs_on_every_intent_whose_examples_carry_entities() -> None:
    """bot/addons/entity_gate.py skips DIET for other intents: the list must not drift."""
    from rasa.shared.nlu.training_data.loading import load_data

    pipeline = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))["pipeline"]
    [diet] = [c for c in pipeline if c["name"].endswith("IntentGatedDIET")]
    annotated = {
        example.get("intent")
        for language in ("en", "lv", "ru")
        for example in load_data(str(ROOT / "bot" / "data" / "nlu" / f"{language}.yml")).intent_examples
        if example.get("entities")
    }
    assert set(diet["entity_intents"]) == annotated
