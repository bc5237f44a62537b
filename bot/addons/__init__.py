"""firstline's additions to Rasa: the handoff policy, the web chat channel, the language slot, and speed-ups of Rasa."""

from bot.addons import applied_events, language_slot, past_states, rasa_speedups  # noqa: F401  (patch Rasa when Rasa loads any add-on)
