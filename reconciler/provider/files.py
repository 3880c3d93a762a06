"""``client.files``: the Files API over the wire (SDK 2.10.0 ``resources/beta/files.py``).

A file is uploaded as a multipart body with one ``file`` part (the file's name, its MIME
type and its bytes) and an optional ``expires_in_seconds``; the body is encoded once, so
every attempt sends the same bytes. Files have no metadata and no update: upload, list
(newest first), retrieve, download, delete.

An upload is not idempotent, and the wire gives it no key to find it by. When an attempt's
answer is lost (a 5xx, a timeout, a dropped connection after sending), the client never
sends it again blind; it first looks among the newest ``LOOKUP_SCAN`` files for one with the
upload's stored filename (the last path component) and size, not among ``existing`` (the ids
the caller knew before uploading; when not given, any):

* a candidate the provider lets download (``downloadable: true``) is compared byte for
  byte, at most ``LOOKUP_DOWNLOADS`` of them; a match is the upload's answer;
* a candidate that cannot be downloaded (the API's files uploaded by a user) is the answer
  only when ``existing`` was given (a file with that name and size that the caller did not
  know of before); without ``existing`` the client cannot tell it from an older file, and
  the upload stays ambiguous (``AmbiguousWriteError``) instead of leaving a twin.

No candidate means the upload did not happen: it is sent again, under the client's one
retry budget. Without ``existing``, an identical older downloadable file counts as the
upload's result: the provider then already holds exactly those bytes under that name.
"""

from __future__ import annotations

import mimetypes
import os
import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.errors import AmbiguousWriteError, ReconcilerError
from reconciler.jsontypes import JSON
from reconciler.provider.resources import Namespace
from reconciler.provider.wire import item_path

if TYPE_CHECKING:
    from reconciler.provider.client import AmbiguityResolver
    from reconciler.provider.pager import Pager

__all__ = ["LOOKUP_DOWNLOADS", "LOOKUP_SCAN", "FileUpload", "Files"]

#: the most candidate files an ambiguous upload's lookup downloads to compare
LOOKUP_DOWNLOADS = 5
#: how many of the newest files that lookup looks at (one page)
LOOKUP_SCAN = 100
#: page size of file lists (the wire allows 1-1000)
PAGE_SIZE = 1000


@dataclass(frozen=True)
class FileUpload:
    """One file to upload: its name (the last path component is what the provider keeps),
    its bytes and, optionally, its MIME type (else guessed from the name)."""

    filename: str
    content: bytes
    mime_type: str | None = None

    def __post_init__(self) -> None:
        if any(c in self.filename for c in '"\r\n'):
            raise ReconcilerError(
                f"file name {self.filename!r} cannot be carried by a multipart upload "
                "(a quote or line break); rename it"
            )

    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike[str],
        *,
        filename: str | None = None,
        mime_type: str | None = None,
    ) -> FileUpload:
        """The file at ``path``, named by its own name unless ``filename`` is given.

        Raises:
            ReconcilerError: the file is missing, a folder, or cannot be read.
        """
        source = Path(path)
        if source.is_dir():
            raise ReconcilerError(f"{source} is a folder; upload a file")
        try:
            content = source.read_bytes()
        except OSError as exc:
            raise ReconcilerError(f"cannot read file {source}: {exc.strerror or exc}") from None
        return cls(filename or source.name, content, mime_type)

    @property
    def stored_filename(self) -> str:
        """The name the provider keeps: the last path component (``unnamed`` if empty,
        which the provider extends by its MIME type, so it is not compared then)."""
        return re.split(r"[/\\]", self.filename)[-1].strip()

    def multipart(self, expires_in_seconds: int | None = None) -> tuple[bytes, str]:
        """The multipart/form-data body and its content type."""
        boundary = secrets.token_hex(16)
        kind = (
            self.mime_type
            or mimetypes.guess_type(self.filename, strict=False)[0]
            or "application/octet-stream"
        )
        head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{self.filename}"\r\n'
            f"Content-Type: {kind}\r\n\r\n"
        )
        parts = [head.encode(), self.content, b"\r\n"]
        if expires_in_seconds is not None:
            field = (
                f"--{boundary}\r\n"
                'Content-Disposition: form-data; name="expires_in_seconds"\r\n\r\n'
                f"{int(expires_in_seconds)}\r\n"
            )
            parts.append(field.encode())
        parts.append(f"--{boundary}--\r\n".encode())
        return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _as_upload(
    source: FileUpload | bytes | str | os.PathLike[str],
    filename: str | None,
    mime_type: str | None,
) -> FileUpload:
    if isinstance(source, FileUpload):
        return source
    if isinstance(source, bytes):
        if not filename:
            raise ReconcilerError("uploading bytes needs a filename")
        return FileUpload(filename, source, mime_type)
    return FileUpload.from_path(source, filename=filename, mime_type=mime_type)


class Files(Namespace):
    """``/v1/files``: uploaded files (no metadata, no update; delete only)."""

    async def upload(
        self,
        source: FileUpload | bytes | str | os.PathLike[str],
        *,
        filename: str | None = None,
        mime_type: str | None = None,
        expires_in_seconds: int | None = None,
        existing: Collection[str] | None = None,
        resolve: AmbiguityResolver | None = None,
    ) -> JSON:
        """Upload a file; returns its metadata (``BetaFileMetadata``'s fields).

        Args:
            source: a path, a ``FileUpload``, or bytes (``filename`` then required).
            filename: the name to upload under (a path's own name by default).
            mime_type: the MIME type to declare (guessed from the name by default).
            expires_in_seconds: 3,600 to 7,776,000; the file's bytes go away after it.
            existing: ids of the files known before this upload; an ambiguous attempt is
                looked up among the others (module docstring).
            resolve: a lookup of the caller's own instead of that one.
        """
        upload = _as_upload(source, filename, mime_type)
        known = frozenset(existing) if existing is not None else None

        async def find() -> JSON | None:
            return await self._find(upload, known)

        return await self._upload(
            "/v1/files", upload.multipart(expires_in_seconds), resolve or find
        )

    async def _find(self, upload: FileUpload, known: frozenset[str] | None) -> JSON | None:
        name = upload.stored_filename
        downloads = 0
        newest, _ = await self._client.paginate("/v1/files", limit=LOOKUP_SCAN).fetch_page(None)
        for item in newest:
            if known is not None and item["id"] in known:
                continue
            if item.get("size_bytes") != len(upload.content):
                continue
            if name and item.get("filename") != name:
                continue
            if item.get("downloadable"):
                if downloads >= LOOKUP_DOWNLOADS:
                    break
                downloads += 1
                if await self.download(item["id"]) == upload.content:
                    return dict(item)
            elif known is not None:
                return dict(item)
            else:
                raise AmbiguousWriteError(
                    f"file {item['id']} has the uploaded file's name and size but cannot be "
                    "downloaded to compare, and no list of the files known before the upload "
                    "was given (existing=)",
                    method="POST",
                    path="/v1/files",
                )
        return None

    def list(self, *, scope_id: str | None = None) -> Pager:
        """Every file, newest first, up to 1000 per page (``scope_id``: a session's files)."""
        return self._client.paginate("/v1/files", {"scope_id": scope_id}, limit=PAGE_SIZE)

    def list_ids(self, ids: Collection[str]) -> Pager:
        """The files among ``ids`` (at most 100) that exist, in one page."""
        return self._client.paginate("/v1/files", {"ids": list(ids)}, limit=None)

    async def retrieve(self, id: str) -> JSON:
        """One file's metadata."""
        return await self._object("GET", item_path("files", id))

    async def download(self, id: str) -> bytes:
        """The file's bytes (the API serves only ``downloadable`` files)."""
        return await self._client.download(item_path("files", id, "content"))

    async def delete(self, id: str) -> JSON:
        """Delete a file; ``{"id", "type": "file_deleted"}``."""
        return await self._object("DELETE", item_path("files", id))
