"""The project's own exceptions: what a user can act on. The CLI prints these in one line (their message names
the file, row or option and what is wrong); any other exception is a bug and keeps its traceback."""


class AsdSeError(Exception):
    """Base of every error asd-se reports to its user."""


class ConfigError(AsdSeError):
    """A setting that cannot be used: unknown key, value out of range, a choice not among the allowed ones."""


class ExplainerUnavailable(AsdSeError):
    """An explainer asked of a model that cannot give it (an SE map from a model without an SE block)."""


class InputError(AsdSeError):
    """An input file or folder that cannot be used (missing, or with nothing usable in it)."""


class OutputError(AsdSeError):
    """An output that cannot be written (a folder that cannot be made, a read-only or full disk, a path that
    is one of the command's inputs); the message names the path. Nothing partial is left."""


class ModelError(AsdSeError, ValueError):
    """A model that cannot be used as asked (``asd_se.explain.anymodel``): a layer it does not have or never
    calls, one whose tensors have no spatial maps, a model left in training mode to be explained."""
