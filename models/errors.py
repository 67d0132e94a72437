"""Errors a user can act on. Every message says what went wrong and what to do next."""


class CasewiseError(Exception):
    """Base class: the CLI prints these as one clear line and exits non-zero."""


class DataError(CasewiseError):
    """The input data cannot be used as given (columns, encoding, classes, format)."""


class MissingEmbeddedPackage(CasewiseError):
    """One of the packages that carry the embedded defaults is not installed."""


class ModelIntegrityError(CasewiseError):
    """A model directory is incomplete or was changed after it was written."""


class ModelNotFound(CasewiseError):
    """No model with that id, or no active model yet."""


class DataDirError(CasewiseError):
    """The data directory cannot be created or written."""
