"""Exceptions a user can act on. Each message names the file/field and what was expected."""


class AlbsentError(Exception):
    """Base class: the CLI prints these without a traceback."""


class ConfigError(AlbsentError):
    """A config value or key is invalid."""


class InputError(AlbsentError):
    """A manifest or input directory cannot be used (checked before any work starts)."""


class StoreError(AlbsentError):
    """A feature store is missing, inconsistent, or made with a different config."""


class AudioError(AlbsentError):
    """One audio file cannot be used. `reason` is a stable code stored in the quarantine list."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class TrackingError(AlbsentError):
    """The MLflow tracking store given (--tracking-uri, tracking.uri, $MLFLOW_TRACKING_URI) cannot be used."""
