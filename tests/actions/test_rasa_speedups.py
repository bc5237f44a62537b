"""The Rasa speed-ups behave exactly as the Rasa code they replace."""

from __future__ import annotations

import asyncio
import inspect
import json
import math
from typing import Any

import jsonschema
import numpy as np
import pytest
import rasa.shared.utils.common
from aiohttp import web
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.events import Event, SlotSet, UserUttered, deserialise_events
from rasa.utils.endpoints import EndpointConfig

from bot.addons import rasa_speedups
from firstline.devservers import free_port

VALID = [
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "language", "value": "lv"}], "responses": [{"text": "Sveiki"}]},
    {"events": [{"event": "action", "name": "action_listen", "policy": None, "confidence": None}]},
    {
        "events": [
            {"event": "slot", "name": "requested_slot", "value": None, "timestamp": 1.5},
            {"event": "active_loop", "name": "handoff_form"},
            {
                "event": "user",
                "text": "Kā nomainīt paroli?",
                "parse_data": {"intent": {"name": "ask", "confidence": 0.9}, "entities": []},
            },
            {"event": "bot", "text": "Sveiki", "data": {"buttons": []}, "metadata": {}},
            {"event": "followup", "name": "action_open_handoff"},
            {"event": "session_started"},
        ],
        "responses": [{"text": "Labi", "buttons": [{"title": "Jā", "payload": "/affirm"}]}],
    },
]
INVALID = [
    {"events": [{"name": "language"}]},  # an event without its type
    {"events": "slot"},
    {"events": [{"event": 7}]},
    {"events": [{"event": "no_such_event"}]},  # a type no alternative names
    {"events": [{"event": "slot", "name": "language", "value": "lv"}, {"event": "user", "text": 7}]},
    {"events": [{"event": "action", "name": "action_listen", "confidence": "high"}]},
    {"events": [{"event": "user", "parse_data": {"intent": {"name": "ask", "confidence": "sure"}}}]},
    {"events": [], "responses": "Sveiki"},
    ["not", "an", "object"],
]


def rasa_validation(result: dict[str, Any]) -> str | None:
    """What Rasa 3.6 itself does: `jsonschema.validate` against the response schema."""
    try:
        jsonschema.validate(result, RemoteAction.action_response_format_spec())
    except jsonschema.ValidationError as error:
        return error.message
    return None


def test_loading_the_addons_installs_them() -> None:
    assert RemoteAction._validate_action_result is rasa_speedups.validate_action_result
    assert Event.resolve_by_type is rasa_speedups.resolve_by_type
    assert EndpointConfig.session is rasa_speedups.session


@pytest.mark.parametrize("result", VALID)
def test_valid_replies_pass(result: dict[str, Any]) -> None:
    assert rasa_validation(result) is None
    assert rasa_speedups._valid(result)  # recognised without checking every alternative
    assert rasa_speedups.validate_action_result(RemoteAction("action_x", None), result) is True


@pytest.mark.parametrize("result", INVALID)
def test_invalid_replies_raise_the_error_rasa_would(result: Any) -> None:
    expected = rasa_validation(result)
    assert expected is not None
    assert not rasa_speedups._valid(result)
    with pytest.raises(jsonschema.ValidationError) as raised:
        rasa_speedups.validate_action_result(RemoteAction("action_x", None), result)
    assert raised.value.message.startswith(expected + ". Failed to validate Action server response")


def test_event_classes_resolve_as_rasa_resolves_them() -> None:
    def rasa_resolve(type_name: str) -> type[Event] | None:
        return next((c for c in rasa.shared.utils.common.all_subclasses(Event) if c.type_name == type_name), None)

    names = {c.type_name for c in rasa.shared.utils.common.all_subclasses(Event)}
    assert len(names) > 20
    for name in names:
        assert Event.resolve_by_type(name) is rasa_resolve(name), name
    assert Event.resolve_by_type("topic") is None
    assert Event.resolve_by_type("no_such_event", default=SlotSet) is SlotSet
    with pytest.raises(ValueError, match="Unknown event name 'no_such_event'"):
        Event.resolve_by_type("no_such_event")


def test_stored_events_deserialise_to_the_same_types() -> None:
    events = deserialise_events(
        [
            {"event": "user", "text": "labdien", "parse_data": {"intent": {"name": "greet", "confidence": 1.0}}},
            {"event": "slot", "name": "language", "value": "lv"},
        ]
    )
    assert [type(e) for e in events] == [UserUttered, SlotSet]


PAYLOADS = [
    {"next_action": "action_kb_search", "tracker": {"latest_message": {"text": "Kā nomainīt paroli? Как сменить?"}}},
    {"url": "https://example.com/a/b", "scores": [0.1 + 0.2, 2.5e-8, 1e300, -0.0], "flags": [True, None, 7]},
    {"confidence": float("nan")},  # ujson refuses it; the standard encoder writes NaN as Rasa's would
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_the_action_server_receives_what_rasa_sent(payload: dict[str, Any]) -> None:
    port = free_port()

    async def exchange() -> Any:
        async def echo(request: web.Request) -> web.Response:
            return web.json_response({"received": json.loads(await request.text())})

        app = web.Application()
        app.router.add_post("/webhook", echo)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            return await EndpointConfig(f"http://127.0.0.1:{port}/webhook").request(json=payload, method="post")
        finally:
            await runner.cleanup()

    received = asyncio.run(exchange())["received"]
    if "confidence" in payload:
        assert math.isnan(received["confidence"])
    else:
        assert received == payload


def test_calls_to_the_action_server_reuse_a_connection_and_survive_its_restart() -> None:
    port = free_port()

    async def exchange() -> list[Any]:
        async def peer(request: web.Request) -> web.Response:
            return web.json_response({"peer": request.transport.get_extra_info("peername")[1]})

        async def start() -> web.AppRunner:
            app = web.Application()
            app.router.add_post("/webhook", peer)
            runner = web.AppRunner(app, shutdown_timeout=0.5)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            return runner

        endpoint = EndpointConfig(f"http://127.0.0.1:{port}/webhook")
        runner = await start()
        peers = [(await endpoint.request(json={}, method="post"))["peer"] for _ in range(3)]
        await runner.cleanup()  # the action server restarts: its connections close
        runner = await start()
        try:
            peers.append((await endpoint.request(json={}, method="post"))["peer"])
        finally:
            await runner.cleanup()
        return peers

    first, second, third, after_restart = asyncio.run(exchange())
    assert first == second == third  # one connection (client port) for all three calls
    assert after_restart != first


def _classifier_and_messages(tmp_path: Any) -> tuple[Any, list[Any], list[Any]]:
    """A trained LogisticRegressionClassifier, and two copies of some messages to classify."""
    import scipy.sparse
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
    from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, INTENT, TEXT
    from rasa.shared.nlu.training_data.features import Features
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    random = np.random.default_rng(7)

    def message(intent: str | None) -> Message:
        row = scipy.sparse.random(1, 300, density=0.05, format="coo", random_state=random)
        data = {TEXT: "x"} | ({INTENT: intent} if intent else {})
        return Message(data=data, features=[Features(row, FEATURE_TYPE_SENTENCE, TEXT, "cvf")])

    classifier = LogisticRegressionClassifier.create(
        {**LogisticRegressionClassifier.get_default_config(), "max_iter": 300},
        LocalModelStorage(tmp_path),
        Resource("lr"),
        ExecutionContext(GraphSchema({}), "test"),
    )
    classifier.train(TrainingData([message(f"intent_{i % 7}") for i in range(140)]))
    unseen = [message(None) for _ in range(20)]
    return classifier, unseen, [Message(data=dict(m.data), features=list(m.features)) for m in unseen]


def test_the_intent_classifier_ranks_exactly_as_rasas(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier

    classifier, ours, theirs = _classifier_and_messages(tmp_path)
    assert not classifier.clf.coef_.T.flags.c_contiguous  # as sklearn leaves it: scipy would copy it
    for one in ours:  # one message at a time, as Rasa parses them
        classifier.process([one])
    assert classifier.clf.coef_.flags.f_contiguous
    assert classifier._create_X(ours).format == "csr"

    monkeypatch.setattr(LogisticRegressionClassifier, "_create_X", rasa_speedups._create_X)
    monkeypatch.setattr(LogisticRegressionClassifier, "process", rasa_speedups._classify)
    classifier.clf.coef_ = np.ascontiguousarray(classifier.clf.coef_)
    for one in theirs:
        classifier.process([one])
    assert [m.get("intent_ranking") for m in ours] == [m.get("intent_ranking") for m in theirs]
    assert len({m.get("intent")["name"] for m in ours}) > 1  # not one answer for everything


@pytest.mark.parametrize("rows", [1, 5])
def test_sparse_features_join_exactly_as_rasas(rows: int) -> None:
    import scipy.sparse
    from rasa.shared.nlu.constants import FEATURE_TYPE_SEQUENCE, TEXT
    from rasa.shared.nlu.training_data.features import Features

    def features(columns: int, dtype: Any, seed: int) -> Features:
        matrix = scipy.sparse.random(rows, columns, density=0.2, format="coo", dtype=dtype, random_state=seed)
        return Features(matrix, FEATURE_TYPE_SEQUENCE, TEXT, f"f{seed}")

    for dtypes in [(np.float64, np.float64), (np.int64, np.float32), (np.float32, np.float32)]:
        ours, theirs = features(40, dtypes[0], 1), features(40, dtypes[0], 1)
        for seed, columns in [(2, 7), (3, 300), (4, 1)]:
            ours.combine_with_features(features(columns, dtypes[1], seed))
            rasa_speedups._combine_sparse(theirs, features(columns, dtypes[1], seed))
        assert ours.features.format == theirs.features.format == "coo"
        assert ours.features.shape == theirs.features.shape == (rows, 348)
        assert ours.features.dtype == theirs.features.dtype
        for part in ("data", "row", "col"):
            assert np.array_equal(getattr(ours.features, part), getattr(theirs.features, part))
    with pytest.raises(ValueError, match="sequence dimensions do not match"):
        features(3, np.float64, 5).combine_with_features(
            Features(scipy.sparse.coo_matrix((rows + 1, 2)), FEATURE_TYPE_SEQUENCE, TEXT, "other")
        )


def test_rasas_graph_validation_still_accepts_the_classifier() -> None:
    """`rasa train` validates the graph from `process`'s type hints; an annotated `self` broke it."""
    from rasa.engine import validation
    from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier

    parameters, returns = validation._get_parameter_information(LogisticRegressionClassifier, "process")
    assert validation._required_args(parameters) == {"messages"}
    assert returns != inspect.Parameter.empty
