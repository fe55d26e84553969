"""tuiapp: a terminal fleet monitor for WhatsApp gateway instances."""

__version__ = "0.1.0"
