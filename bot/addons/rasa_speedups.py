"""Hot spots of Rasa 3.6's message handling, done once instead of on every message.

A py-spy profile of the Rasa server answering questions (one user, 81 messages) put
~37 % of its CPU in `jsonschema.validate` of the action server's replies, almost all
of it re-checking Rasa's constant response schema against the JSON Schema
metaschema, and ~9 % in `Event.resolve_by_type`, which walks every `Event` subclass
for each stored event it deserialises. With ten users, 13 % went to encoding the
conversation for each action server call with the standard library's JSON encoder.
With ten users, the logistic regression intent classifier spent ~1 ms of each message
copying its whole weight matrix (scipy multiplies a sparse row by `coef_.T` only in C
order, and sklearn's `coef_.T` is not) and ~1 ms stacking a message's features
with an empty dense part through COO matrices; before that, joining the four
featurizers' sparse features side by side went through scipy's general block-matrix
code (0.12 ms per join of two one-row matrices, 0.03 ms when concatenated directly).
All of these are replaced by equivalents:

- the response schema is checked once and compiled; each event of a reply is checked
  against the schema of its own type rather than all 23 alternatives of the schema's
  `oneOf` (with ten users that check still took 6 % of Rasa's CPU), and invalid
  replies raise the same `ValidationError` (the best match, as `jsonschema.validate`
  picks it) with Rasa's message;
- event classes are looked up by type name in a table built from the same subclass
  walk, first match winning as before, and rebuilt when a name is not in it;
- two COO feature matrices are joined by concatenating their entries, as scipy's
  `hstack` does for them (same entries in the same order, same dtype);
- the classifier keeps its weights in Fortran order, so `coef_.T` is used in place (the
  same arithmetic, bit for bit), and a message with sparse features only is passed as
  its own CSR row;
- requests to the action server are encoded with ujson (a Rasa dependency, several
  times faster), falling back to the standard encoder for what ujson refuses (NaN),
  and reuse open connections instead of connecting for each call.

`bot.addons` imports this module, and Rasa imports `bot.addons` (the firstline
channel and the handoff policy) before it handles a message.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
from typing import Any, Dict, List, Optional, Text, Tuple, Type

import aiohttp
import jsonschema
import numpy as np
import rasa.shared.utils.common
from rasa.core.actions.action import RemoteAction
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.shared.constants import DOCS_BASE_URL
from rasa.shared.core.events import Event
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.utils.endpoints import DEFAULT_REQUEST_TIMEOUT, EndpointConfig
from scipy.sparse import coo_matrix, csr_matrix, vstack


@functools.lru_cache(maxsize=1)
def _response_validator() -> Any:
    schema = RemoteAction.action_response_format_spec()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


@functools.lru_cache(maxsize=1)
def _validators_by_event() -> Optional[Tuple[Any, Dict[Text, Any]]]:
    """The response schema without the events' `oneOf`, and its alternatives by event type.

    Each alternative pins `event` to its own constant, so an event matches exactly one
    alternative (as `oneOf` demands) exactly when it matches the one its type names.
    None if the schema is not shaped so (then every reply is checked in full).
    """
    schema = copy.deepcopy(RemoteAction.action_response_format_spec())
    try:
        alternatives = schema["properties"]["events"]["items"].pop("oneOf")
        types = [a["properties"]["event"]["const"] for a in alternatives]
    except (KeyError, TypeError):
        return None
    if len(set(types)) != len(types):
        return None
    validator_class = jsonschema.validators.validator_for(schema)
    return validator_class(schema), {t: validator_class(a) for t, a in zip(types, alternatives, strict=True)}


def _valid(result: Dict[Text, Any]) -> bool:
    """Whether the reply matches Rasa's response schema, checking each event against its own type only."""
    validators = _validators_by_event()
    if validators is None:
        return False
    outer, by_event = validators
    if not outer.is_valid(result):
        return False
    for event in result.get("events") or []:  # each an object with a string "event", checked above
        alternative = by_event.get(event["event"])
        if alternative is None or not alternative.is_valid(event):
            return False
    return True


def validate_action_result(self: RemoteAction, result: Dict[Text, Any]) -> bool:
    """`RemoteAction._validate_action_result` with compiled validators.

    A valid reply is recognised by checking each event against the schema of its own
    type (`_valid`), instead of against all 23 alternatives of the schema's `oneOf`;
    an invalid one is checked again in full, so that the error is the one Rasa reports.
    """
    if _valid(result):
        return True
    error = jsonschema.exceptions.best_match(_response_validator().iter_errors(result))
    if error is not None:
        error.message += (
            ". Failed to validate Action server response from API, "
            "make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit {DOCS_BASE_URL}/custom-actions"
        )
        raise error
    return True


_event_classes: Dict[Text, Type[Event]] = {}


def resolve_by_type(type_name: Text, default: Optional[Type[Event]] = None) -> Optional[Type[Event]]:
    """`Event.resolve_by_type` from a table of the event classes by type name."""
    if type_name not in _event_classes:
        _event_classes.clear()
        for event_class in rasa.shared.utils.common.all_subclasses(Event):
            _event_classes.setdefault(event_class.type_name, event_class)
    if type_name in _event_classes:
        return _event_classes[type_name]
    if type_name == "topic":
        return None  # as Rasa: old TopicSet events are skipped
    if default is not None:
        return default
    raise ValueError(f"Unknown event name '{type_name}'.")


def dumps(value: Any) -> str:
    """JSON text of value: ujson's, or the standard library's where ujson refuses."""
    import ujson

    try:
        return str(ujson.dumps(value, ensure_ascii=False, escape_forward_slashes=False))
    except (OverflowError, TypeError, ValueError):
        return json.dumps(value)


#: Idle connections to the action server are dropped after this long, before Sanic's
#: own keep-alive timeout (5 s) closes them from its side while one is being reused.
KEEPALIVE_SECONDS = 2.0
#: (event loop, connector) shared by the sessions Rasa makes on that loop.
_shared_connector: Optional[Tuple[asyncio.AbstractEventLoop, aiohttp.TCPConnector]] = None


def _connector() -> Optional[aiohttp.TCPConnector]:
    """This loop's shared connection pool (None outside a running loop)."""
    global _shared_connector
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    if _shared_connector is None or _shared_connector[0] is not loop or _shared_connector[1].closed:
        _shared_connector = (loop, aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_SECONDS))
    return _shared_connector[1]


def session(self: EndpointConfig) -> aiohttp.ClientSession:
    """`EndpointConfig.session`, encoding JSON bodies with `dumps` and keeping connections open.

    Rasa makes a session, and so a new TCP connection, for every call to the action
    server; these sessions share one pool, so calls reuse idle connections.
    """
    auth = aiohttp.BasicAuth(self.basic_auth["username"], self.basic_auth["password"]) if self.basic_auth else None
    connector = _connector()
    return aiohttp.ClientSession(
        headers=self.headers,
        auth=auth,
        timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
        json_serialize=dumps,
        connector=connector,
        connector_owner=connector is None,
    )


_combine_sparse = Features._combine_sparse_features


def combine_sparse_features(self: Features, additional_features: Features) -> None:
    """`Features._combine_sparse_features`: scipy's `hstack`, without `bmat`'s general path for two COO matrices."""
    left, right = self.features, additional_features.features
    if not (isinstance(left, coo_matrix) and isinstance(right, coo_matrix)) or left.shape[0] != right.shape[0]:
        _combine_sparse(self, additional_features)  # Rasa's error for mismatched rows, or another format
        return
    self.features = coo_matrix(
        (
            np.concatenate([left.data, right.data]),
            (np.concatenate([left.row, right.row]), np.concatenate([left.col, right.col + left.shape[1]])),
        ),
        shape=(left.shape[0], left.shape[1] + right.shape[1]),
    )
    self._cached_fingerprint = None


_create_X = LogisticRegressionClassifier._create_X
_classify = LogisticRegressionClassifier.process


def create_x(self: LogisticRegressionClassifier, messages: List[Message]) -> csr_matrix:
    """`LogisticRegressionClassifier._create_X`: the same matrix, as CSR, without stacking an empty part."""
    rows = []
    for message in messages:
        sparse = message.get_sparse_features(attribute=TEXT)[1]
        if sparse is None or message.get_dense_features(attribute=TEXT)[1] is not None:
            return _create_X(self, messages)
        rows.append(csr_matrix(sparse.features))
    return rows[0] if len(rows) == 1 else vstack(rows, format="csr")


# `self` stays unannotated: Rasa's graph validation reads the type hints of `process`
# as the parameters the graph must provide, and would ask for a "self" input.
def classify(self, messages: List[Message]) -> List[Message]:  # type: ignore[no-untyped-def]
    """`LogisticRegressionClassifier.process` with the weights in Fortran order (see the module notes)."""
    coef = getattr(self.clf, "coef_", None)
    if coef is not None and not coef.flags.f_contiguous:
        self.clf.coef_ = np.asfortranarray(coef)
    result: List[Message] = _classify(self, messages)
    return result


Features._combine_sparse_features = combine_sparse_features  # type: ignore[method-assign]
LogisticRegressionClassifier._create_X = create_x  # type: ignore[method-assign]
LogisticRegressionClassifier.process = classify  # type: ignore[method-assign]
RemoteAction._validate_action_result = validate_action_result  # type: ignore[method-assign]
Event.resolve_by_type = staticmethod(resolve_by_type)  # type: ignore[method-assign,assignment]
EndpointConfig.session = session  # type: ignore[method-assign]
