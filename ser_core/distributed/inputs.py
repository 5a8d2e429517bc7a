"""What a batch job reads: local paths or URIs (`s3://…`, `gs://…`, `file:///…` through pyarrow
filesystems), and folders, manifest CSVs and file lists expanded into the audio files they name."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from ..errors import ManifestError

if TYPE_CHECKING:
    from ..io.audio import Audio


def is_uri(source: str) -> bool:
    return "://" in str(source)


def open_filesystem(uri: str):
    from pyarrow import fs

    return fs.FileSystem.from_uri(uri)  # (filesystem, path inside it)


def read_bytes(uri: str, max_bytes: int) -> bytes:
    """A file's bytes through pyarrow's filesystems (S3, GCS, HDFS, file://), refusing oversize
    files from their size before reading, as `load_audio` does for local paths."""
    from pyarrow import fs as pafs

    from ..errors import AudioTooLargeError
    from ..io.audio import AudioFileNotFoundError

    filesystem, path = open_filesystem(uri)
    info = filesystem.get_file_info(path)
    if info.type != pafs.FileType.File:
        raise AudioFileNotFoundError(uri)
    if info.size is not None and info.size > max_bytes:
        raise AudioTooLargeError(info.size, max_bytes)
    with filesystem.open_input_stream(path) as stream:
        return stream.read(max_bytes + 1)


def load_source(source: str, sample_rate: int) -> "Audio":
    """A local path or a URI → `Audio`, decoded in the process that calls it (the actor)."""
    from ..io.audio import DEFAULT_LIMITS, load_audio

    data = read_bytes(source, DEFAULT_LIMITS.max_bytes) if is_uri(source) else source
    return load_audio(data, sample_rate)


def _audio_under(directory: str) -> list[str]:
    from ..io.audio import AUDIO_EXTENSIONS

    if is_uri(directory):
        from pyarrow import fs as pafs

        filesystem, path = open_filesystem(directory)
        scheme = directory.split("://", 1)[0]
        infos = filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
        names = sorted(i.path for i in infos if i.type == pafs.FileType.File)
        return [f"{scheme}://{name}" for name in names if Path(name).suffix.lower() in AUDIO_EXTENSIONS]
    return [str(p) for p in sorted(Path(directory).rglob("*")) if p.suffix.lower() in AUDIO_EXTENSIONS]


def _read_text(source: str) -> str:
    if is_uri(source):
        filesystem, path = open_filesystem(source)
        with filesystem.open_input_stream(path) as stream:
            return stream.read().decode()
    return Path(source).read_text()


def _relative_to(listing: str, entry: str) -> str:
    """A listed path as given when absolute or a URI, else relative to the listing's folder."""
    if is_uri(entry) or Path(entry).is_absolute():
        return entry
    if is_uri(listing):
        return f"{listing.rsplit('/', 1)[0]}/{entry}"
    return str(Path(listing).parent / entry)


def list_inputs(sources: Iterable[str]) -> list[str]:
    """Expand inputs into audio files, in order: a manifest CSV (its `path` column), a text file
    (one path per line), a directory (its audio files, recursively, sorted), or a file itself. Paths
    inside a CSV or text list may be relative to it. Local paths and URIs both work."""
    files: list[str] = []
    for source in map(str, sources):
        lower = source.lower()
        if (is_uri(source) and source.endswith("/")) or (not is_uri(source) and Path(source).is_dir()):
            files += _audio_under(source)
        elif lower.endswith(".csv"):
            try:
                rows = csv.DictReader(io.StringIO(_read_text(source)))
                if "path" not in (rows.fieldnames or ()):
                    raise ManifestError(f"{source} needs a path column")
                files += [_relative_to(source, row["path"]) for row in rows if row["path"].strip()]
            except FileNotFoundError:
                raise ManifestError(f"Manifest not found: {source}") from None
        elif lower.endswith((".txt", ".lst", ".list")):
            try:
                lines = [line.strip() for line in _read_text(source).splitlines()]
            except FileNotFoundError:
                raise ManifestError(f"File list not found: {source}") from None
            files += [_relative_to(source, line) for line in lines if line and not line.startswith("#")]
        else:
            files.append(source)  # an audio file: a missing one becomes an error row
    return files
