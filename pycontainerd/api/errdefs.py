"""containerd's error definitions: one exception family, one code per class.

Every domain error raised anywhere in pycontainerd is an :class:`ErrdefsError`
subclass. Only ``wire/`` turns them into the wire map ``{"code", "message"}``
and back, through :func:`to_wire` and :func:`from_wire` (containerd's
``errgrpc.ToGRPC`` / ``ToNative``). Anything that is not an ``ErrdefsError``
reaching the wire becomes :class:`Internal`, with the traceback logged, never
sent.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:  # typing costs the shim ~1.6 MiB of RSS at run time
    from typing import ClassVar


class ErrdefsError(Exception):
    """Base of every domain error; ``code`` is its wire code."""

    code: ClassVar[str] = "Unknown"

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message or self.code

    def __str__(self) -> str:
        return self.message


class InvalidArgument(ErrdefsError):
    code = "InvalidArgument"


class NotFound(ErrdefsError):
    code = "NotFound"


class AlreadyExists(ErrdefsError):
    code = "AlreadyExists"


class FailedPrecondition(ErrdefsError):
    code = "FailedPrecondition"


class Unavailable(ErrdefsError):
    code = "Unavailable"


class NotImplemented_(ErrdefsError):
    code = "NotImplemented"


class Canceled(ErrdefsError):
    code = "Canceled"


class DeadlineExceeded(ErrdefsError):
    code = "DeadlineExceeded"


class ResourceExhausted(ErrdefsError):
    code = "ResourceExhausted"


class Aborted(ErrdefsError):
    code = "Aborted"


class OutOfRange(ErrdefsError):
    code = "OutOfRange"


class DataLoss(ErrdefsError):
    code = "DataLoss"


class Unknown(ErrdefsError):
    code = "Unknown"


class Internal(ErrdefsError):
    code = "Internal"


class PermissionDenied(ErrdefsError):
    code = "PermissionDenied"


CODES: dict[str, type[ErrdefsError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        Unavailable,
        NotImplemented_,
        Canceled,
        DeadlineExceeded,
        ResourceExhausted,
        Aborted,
        OutOfRange,
        DataLoss,
        Unknown,
        Internal,
        PermissionDenied,
    )
}


def to_wire(exc: ErrdefsError) -> dict[str, str]:
    """The wire map of a domain error."""
    return {"code": exc.code, "message": exc.message}


def from_wire(error: object) -> ErrdefsError:
    """The domain error for a wire error map; malformed maps become ``Unknown``."""
    if isinstance(error, dict):
        code = error.get("code")
        message = error.get("message")
        cls = CODES.get(code, Unknown) if isinstance(code, str) else Unknown
        return cls(message if isinstance(message, str) else repr(error))
    return Unknown(repr(error))
