"""The socket.io channel the firstline chat widget talks to.

It speaks the protocol of Rasa's own ``socketio`` channel (``session_request``,
``user_uttered``, ``bot_uttered``) with three differences that matter here:

- a bot message is sent as ONE event carrying its text, buttons and custom data.
  The stock channel splits text at every blank line, which tears a Markdown
  article (lists, code blocks) into many bubbles and drops its metadata;
- joining the session's room is awaited, so replies pushed later through
  ``trigger_intent`` (an agent's message) reach the socket with any
  python-socketio 5.x (the stock channel breaks with >= 5.10, see STACK_NOTES);
- allowed browser origins are configurable instead of "any".
"""

from __future__ import annotations

import inspect
import json
import logging
import uuid
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.socketio import SocketBlueprint
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

logger = logging.getLogger(__name__)


class WebChatOutput(OutputChannel):
    @classmethod
    def name(cls) -> Text:
        return "webchat"

    def __init__(self, sio: AsyncServer, bot_message_evt: Text) -> None:
        self.sio = sio
        self.bot_message_evt = bot_message_evt

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        payload: Dict[Text, Any] = {"text": message.get("text") or ""}
        buttons = message.get("buttons") or message.get("quick_replies") or []
        if buttons:
            payload["quick_replies"] = [{"title": b.get("title", ""), "payload": b.get("payload", "")} for b in buttons]
        if message.get("custom"):
            payload["custom"] = message["custom"]
        if message.get("image"):
            payload["image"] = message["image"]
        if not payload["text"] and len(payload) == 1:
            return
        await self.sio.emit(self.bot_message_evt, payload, room=recipient_id)

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"text": text})


class WebChatInput(InputChannel):
    """Configured in credentials.yml as ``bot.addons.webchat.WebChatInput``."""

    @classmethod
    def name(cls) -> Text:
        return "webchat"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        credentials = credentials or {}
        origins = credentials.get("cors_allowed_origins", "*")
        if isinstance(origins, str) and origins != "*":
            origins = [o.strip() for o in origins.split(",") if o.strip()]
        return cls(
            user_message_evt=credentials.get("user_message_evt", "user_uttered"),
            bot_message_evt=credentials.get("bot_message_evt", "bot_uttered"),
            socketio_path=credentials.get("socketio_path", "/socket.io"),
            cors_allowed_origins=origins,
        )

    def __init__(
        self,
        user_message_evt: Text = "user_uttered",
        bot_message_evt: Text = "bot_uttered",
        socketio_path: Text = "/socket.io",
        cors_allowed_origins: Any = "*",
    ) -> None:
        self.user_message_evt = user_message_evt
        self.bot_message_evt = bot_message_evt
        self.socketio_path = socketio_path
        self.cors_allowed_origins = cors_allowed_origins
        self.sio: Optional[AsyncServer] = None

    def get_output_channel(self) -> Optional[OutputChannel]:
        if self.sio is None:
            return None
        return WebChatOutput(self.sio, self.bot_message_evt)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        sio = AsyncServer(async_mode="sanic", cors_allowed_origins=self.cors_allowed_origins)
        self.sio = sio
        webhook = SocketBlueprint(sio, self.socketio_path, "webchat_webhook", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @sio.on("session_request")
        async def session_request(sid: Text, data: Optional[Dict]) -> None:
            data = data or {}
            session_id = str(data.get("session_id") or uuid.uuid4().hex)[:128]
            joined = sio.enter_room(sid, session_id)
            if inspect.isawaitable(joined):
                await joined
            await sio.emit("session_confirm", session_id, room=sid)

        @sio.on(self.user_message_evt)
        async def handle_message(sid: Text, data: Dict) -> None:
            if not isinstance(data, dict) or not data.get("session_id"):
                logger.warning("webchat message without a session_id ignored")
                return
            metadata = data.get("metadata") or {}
            if isinstance(metadata, str):
                try:
                    metadata = json.loads(metadata)
                except ValueError:
                    metadata = {}
            text = data.get("message")
            if not isinstance(text, str) or not text.strip():
                return
            if text.lstrip().startswith("/EXTERNAL_"):
                # External intents come from the firstline service only, never a visitor.
                text = text.lstrip()[1:]
            await on_new_message(
                UserMessage(
                    text[:10_000],
                    WebChatOutput(sio, self.bot_message_evt),
                    str(data["session_id"])[:128],
                    input_channel=self.name(),
                    metadata=metadata if isinstance(metadata, dict) else {},
                )
            )

        return webhook


__all__: List[Text] = ["WebChatInput", "WebChatOutput"]
