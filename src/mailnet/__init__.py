"""mailnet: who gives and who only takes, contact by contact, from your own mail."""

__version__ = "0.1.0"
