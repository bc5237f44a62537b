"""firstline's additions to Rasa: the handoff policy, the web chat channel, and speed-ups of Rasa itself."""

from bot.addons import past_states, rasa_speedups  # noqa: F401  (patch Rasa when Rasa loads any add-on)
