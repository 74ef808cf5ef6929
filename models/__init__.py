"""The default intent model shipped with mailnet (see MODEL_CARD.md)."""
