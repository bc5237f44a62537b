"""firstline: the service that hosts the knowledge base, the handoff queue and the pages."""

__version__ = "0.1.0"
