"""The project's own exceptions: what a user can act on, and the exit codes. The CLI prints these in one line
(their message names the file, row or option and what is wrong); any other exception is a bug and keeps its
traceback."""

EXIT_OK = 0
EXIT_FAILED = 1  # an AsdSeError: the message names the file
EXIT_USAGE = 2  # bad arguments or settings (argparse's own code, and ConfigError's), checked before any work
EXIT_SKIPPED = 3  # finished, but some rows or videos were skipped: see the summary
EXIT_UNDEFINED = 4  # evaluate: the split has no positives, mAP is undefined
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM, as shells report it


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


class MediaError(AsdSeError):
    """A media file that cannot be used; the message names the file."""


class Stalled(MediaError):
    """No frame (or no byte) came from the source for longer than the stall timeout."""


class CheckpointError(AsdSeError):
    """A file that is not a usable asd-se checkpoint; the message names it and why."""


class RenderError(AsdSeError):
    """A render that cannot start (bad paths, annotations that do not fit); the message says why."""


class NonFiniteOutput(AsdSeError):
    """A model whose outputs are NaN or infinite: nothing it scored is kept."""


class TrainingDiverged(AsdSeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class StoreError(AsdSeError):
    """A store that cannot be used as asked; the message names it."""


class FetchError(AsdSeError):
    """A file that could not be fetched or written; the message names the URL or the path."""
