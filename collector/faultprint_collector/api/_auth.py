"""Who is calling: API keys, and the project a request is scoped to.

Keys are configured per project and kept only as SHA-256 digests: a key
file holds ``project:<64 hex digits>`` lines (``faultprint keys add``
appends one and prints the key once); keys given inline in
``FAULTPRINT_API_KEYS`` are hashed when loaded. Keys are long random
strings, so an unsalted digest is as strong as the key itself (the same
choice as hosted API tokens).

When keys are configured, every ``/v1/`` and ``/api/`` request must carry
one (``Authorization: Bearer <key>`` or ``x-api-key: <key>``) and is scoped
to the key's project, whatever the payload claims. Without keys the
collector runs open, as project ``default``, and refuses to listen
anywhere but loopback unless told ``--insecure``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import HTTPException, Request

from faultprint_collector.settings import DEFAULT_PROJECT, Settings

PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
KEY_PREFIX = "fpk_"
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
#: paths that need a key when keys are configured
PROTECTED_PREFIXES = ("/v1/", "/api/")


class KeyConfigError(ValueError):
    """The API key configuration is invalid; the message says where and why."""


def hash_key(key: str) -> str:
    """The stored form of KEY (hex SHA-256)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A new random API key."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass
class KeyRing:
    """Project of each API key digest; empty means the collector runs open."""

    projects: dict[str, str] = field(default_factory=dict)

    @property
    def open(self) -> bool:
        """True when no keys are configured."""
        return not self.projects

    def project_of(self, key: str) -> str | None:
        """The project KEY belongs to, or None."""
        digest = hash_key(key)
        for known, project in self.projects.items():
            # compare every digest in constant time; key rings are small
            if hmac.compare_digest(known, digest):
                return project
        return None

    def add(self, project: str, digest: str, where: str) -> None:
        """Register DIGEST for PROJECT (WHERE names the source for errors)."""
        if not PROJECT_NAME.fullmatch(project):
            raise KeyConfigError(f"{where}: invalid project name {project!r}")
        if not _DIGEST.match(digest):
            raise KeyConfigError(f"{where}: expected a 64-hex-digit SHA-256 digest")
        self.projects[digest] = project

    @classmethod
    def load(cls, file: str = "", inline: str = "") -> KeyRing:
        """Keys from FILE (``project:sha256`` lines) and INLINE (``project:key,…``)."""
        ring = cls()
        if file:
            path = Path(file).expanduser()
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise KeyConfigError(f"cannot read API key file {path}: {exc}") from exc
            for number, line in enumerate(text.splitlines(), 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                project, sep, digest = line.partition(":")
                if not sep:
                    raise KeyConfigError(f"{path}:{number}: expected project:sha256")
                ring.add(project.strip(), digest.strip().lower(), f"{path}:{number}")
        for index, item in enumerate(i for i in inline.split(",") if i.strip()):
            project, sep, key = item.strip().partition(":")
            if not sep or len(key) < 16:
                raise KeyConfigError(
                    f"FAULTPRINT_API_KEYS item {index + 1}: expected project:key "
                    "with a key of at least 16 characters"
                )
            ring.add(project, hash_key(key), f"FAULTPRINT_API_KEYS item {index + 1}")
        return ring

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        """The key ring the settings describe.

        Raises KeyConfigError when keys are asked for and none are given (a
        key file without keys, ``FAULTPRINT_API_KEYS`` without items): the
        collector would run open, every request project ``default``, when
        its operator meant it to require keys.
        """
        file, inline = settings.api_keys_file, settings.api_keys
        ring = cls.load(file)
        if file and ring.open:
            raise KeyConfigError(
                f"the API key file {Path(file).expanduser()} holds no API keys; add one "
                f"with 'faultprint keys add PROJECT --file {file}', or leave out "
                "--keys / FAULTPRINT_API_KEYS_FILE to run open"
            )
        given = cls.load(inline=inline)
        if inline.strip() and given.open:
            raise KeyConfigError(
                "FAULTPRINT_API_KEYS holds no API keys: give project:key items separated "
                "by commas, or leave it unset to run open"
            )
        ring.projects.update(given.projects)
        return ring


def append_key(file: str, project: str) -> str:
    """Create a key for PROJECT, append its digest to FILE; return the key."""
    if not PROJECT_NAME.fullmatch(project):
        raise KeyConfigError(
            f"invalid project name {project!r}: letters, digits, '.', '_', '-' (max 64)"
        )
    path = Path(file).expanduser()
    if path.exists():
        KeyRing.load(str(path))  # refuse to append to a file we cannot read back
    key = new_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(f"{project}:{hash_key(key)}\n")
    return key


def presented_key(request: Request) -> str | None:
    """The API key the request carries (Bearer or x-api-key), if any."""
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    key = request.headers.get("x-api-key", "").strip()
    return key or None


def authenticate(ring: KeyRing, request: Request) -> str:
    """The caller's project; raises 401 when keys are required and missing or wrong."""
    if ring.open:
        return DEFAULT_PROJECT
    key = presented_key(request)
    if key is None:
        raise HTTPException(
            401,
            "an API key is required: send 'Authorization: Bearer <key>' or 'x-api-key'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    project = ring.project_of(key)
    if project is None:
        raise HTTPException(401, "invalid API key", headers={"WWW-Authenticate": "Bearer"})
    return project


def caller_project(request: Request) -> str:
    """The project every write and read of this request is scoped to."""
    cached = getattr(request.state, "faultprint_project", None)
    if cached is not None:
        return str(cached)
    state = getattr(request.app.state, "faultprint", None)
    ring = getattr(state, "keys", None) or KeyRing()
    project = authenticate(ring, request)
    request.state.faultprint_project = project
    return project


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach."""
    return host in ("localhost", "::1") or host.startswith("127.")
