"""What a server serves, and how the CLI hands it to uvicorn's worker processes (no FastAPI here)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..corpus import check_url
from ..errors import InvalidParameterError

__all__ = [
    "INSTALL",
    "MAX_DEPTH",
    "METRICS_VARIABLE",
    "MIN_TOKEN_LENGTH",
    "TOKEN_VARIABLE",
    "ServeSettings",
    "token_warning",
]

INSTALL = "install the server with: pip install 'recommender[serve]'"
TOKEN_VARIABLE = "RECOMMENDER_API_TOKEN"
# A shorter write token is warned about at start: it can be guessed, even at a few tries a minute.
MIN_TOKEN_LENGTH = 16
# How deep a JSON body may nest: a draft or an article nests two or three levels; Python's parser would
# recurse once per level (a RecursionError at about a thousand).
MAX_DEPTH = 32
# prometheus_client's multiprocess mode: the folder where every worker keeps its metrics, read before the
# library is first imported in the process.
METRICS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# How the CLI hands its settings to uvicorn's worker processes (each builds its own app).
_ENV = {
    "model": "RECOMMENDER_SERVE_MODEL",
    "store": "RECOMMENDER_SERVE_STORE",
    "max_age": "RECOMMENDER_SERVE_MAX_AGE",
    "default_image": "RECOMMENDER_SERVE_DEFAULT_IMAGE",
}


@dataclass(frozen=True, slots=True)
class ServeSettings:
    """What a server serves: the model (and store), the write token (``None``: writes off), how long a
    CDN may cache a list (``max_age`` seconds), the largest request body, how often to look for changed
    files, and the picture the HTML box shows for an article without one (``None``: no picture)."""

    model: Path
    store: Path | None = None
    token: str | None = None
    max_age: int = 60
    max_body: int = 1_000_000
    reload_seconds: float = 0.25
    default_image: str | None = None

    def __post_init__(self) -> None:
        if self.default_image is not None:
            try:
                check_url(self.default_image, "image")
            except ValueError as exc:
                raise InvalidParameterError(f"the default image: {exc}") from None

    @classmethod
    def from_env(cls) -> ServeSettings:
        store = os.environ.get(_ENV["store"])
        return cls(
            model=Path(os.environ[_ENV["model"]]),
            store=Path(store) if store else None,
            token=os.environ.get(TOKEN_VARIABLE) or None,
            max_age=int(os.environ.get(_ENV["max_age"], "60")),
            default_image=os.environ.get(_ENV["default_image"]) or None,
        )

    def to_env(self) -> dict[str, str]:
        env = {_ENV["model"]: str(self.model), _ENV["max_age"]: str(self.max_age)}
        if self.store is not None:
            env[_ENV["store"]] = str(self.store)
        if self.default_image is not None:
            env[_ENV["default_image"]] = self.default_image
        return env


def token_warning(settings: ServeSettings) -> str | None:
    """What to tell the operator at start when the write token is short enough to guess; ``None`` if it is
    not (or writes are off)."""
    token = settings.token
    if token is None or len(token) >= MIN_TOKEN_LENGTH:
        return None
    return (
        f"{TOKEN_VARIABLE} has {len(token)} characters: use {MIN_TOKEN_LENGTH} or more random ones, e.g. "
        "`python -c 'import secrets; print(secrets.token_urlsafe(24))'`"
    )
