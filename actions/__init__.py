"""Custom actions of the firstline bot: thin HTTP clients of the firstline service.

They run in the bot environment (Python 3.10, rasa-sdk 3.6) and never import
`kb_index` or `handoff`; everything goes over HTTP (see `actions.client`).
"""
