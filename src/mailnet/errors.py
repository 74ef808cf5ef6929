"""The one exception family the CLI turns into a one-line message and exit code 2."""


class MailnetError(Exception):
    """Bad input from the user or the world: a path, a config value, a store, a server."""
