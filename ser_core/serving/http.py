"""`ser serve`: the HTTP API on the same `SerModel` as the CLI and the app.

Starlette and uvicorn because both are already installed with Streamlit (same pinned versions, no new
dependency for a checkout), Starlette adds nothing between a request and the model, and its test
client drives HTTP and WebSockets in-process. FastAPI would add pydantic for a schema of six routes,
which is written out below instead (`OPENAPI`).

Uploads stay in memory: the body is read with a byte cap, and multipart bodies are split here with
python-multipart's streaming parser into bytes (Starlette's own form parser spools parts over 1 MiB
to a temporary file). Analyses run in the bounded analysis pool (`serving.pool`, the app's kind),
one worker per core and one more (`default_workers`), on models loaded once, each on the threads the
thread policy gives it; requests beyond the pool and its queue get 429 with Retry-After instead of
waiting without bound. Every refusal is JSON with one sentence (the CLI's sentence for bad audio); access logs are
one JSON line per request, without audio or query payloads.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import logging
import math
import os
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import (AudioTooLargeError, AudioTooLongError, ConfigError, ModelError, SerError, format_size,
                      require_extra)
from ..frontend.language import MIN_SPEECH_S, SURE_ABOVE, guess_analysis, heard_codes
from ..io.audio import AudioLimits
from .pool import AnalysisPool, PoolFull
from .results import judged, named_classes, over_classes, segment_rows, speaker_rows
from .segments import DEFAULT_SPEAKERS, MAX_SPEAKERS, SpeakerOptions, speaker_count
from .threads import process_cores

logger = logging.getLogger("ser.serve")
access_logger = logging.getLogger("ser.serve.access")

SERVE_MAX_BYTES = 50 * 2**20  # an API's uploads are clips and calls, not the app's 2 h recordings
SERVE_MAX_DURATION_S = 600.0
MULTIPART_OVERHEAD = 64 * 1024  # headers and boundaries a multipart body may add to the file's bytes
# Files in one `/v1/analyze/batch` request; together they are held to one upload's byte limit.
MAX_BATCH_FILES = 32
STREAM_INTERVAL_S = 0.5  # a reading twice a second, as the Live page
MAX_STREAM_MESSAGE = 1 << 20  # one PCM message: 1 MiB, 11 s of 48 kHz mono
STREAM_RATES = (8000, 192000)
STREAM_SETTINGS = ("sample_rate", "channels", "model", "classes", "api_key")  # what the first message may hold


def default_workers() -> int:
    """Analyses at once: one per core, and one more. Part of an analysis holds the GIL (decoding, voice
    detection, features: numpy on small arrays), and while one does, a core whose analysis waits for
    the GIL idles; one more analysis than cores fills those gaps from the encoder's GIL-free time. On
    the 2-core AMD EPYC, 16 clients, served and in-process runs interleaved: 3 workers 41.2 analyses/s
    (95% of in-process) at 47.4 ms of server CPU each, 2 workers 39.0/s (90%) at 48.2 ms; the server
    used 1.93 of the 2 cores against 1.86."""
    return process_cores() + 1


@dataclass(frozen=True)
class ServeConfig:
    """What `ser serve` runs with; every field is a command-line option (`add_arguments`)."""

    model: str | None = None  # served when a request names none, a name or a directory; None: the rule's default
    workers: int = field(default_factory=default_workers)  # analyses at once
    queue: int | None = None  # analyses waiting for a worker before 429 (default: 2 per worker)
    timeout_s: float = 60.0  # one request, from its first byte to its answer
    max_streams: int | None = None  # WebSocket streams at once (default: 4 per worker)
    limits: AudioLimits = AudioLimits(max_bytes=SERVE_MAX_BYTES, max_duration_s=SERVE_MAX_DURATION_S)
    api_keys: frozenset[str] = frozenset()  # empty: no key needed
    cors_origins: tuple[str, ...] = ()  # empty: no CORS headers, browsers on other origins are refused

    @property
    def capacity(self) -> int:
        return self.workers + (2 * self.workers if self.queue is None else self.queue)

    @property
    def stream_capacity(self) -> int:
        return 4 * self.workers if self.max_streams is None else self.max_streams


class ApiError(Exception):
    """A refusal: an HTTP status and the sentence the client gets."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def audio_error_status(error: SerError) -> int:
    """413 for input over a size or duration limit, 404 for an unknown model, else 422."""
    if isinstance(error, (AudioTooLargeError, AudioTooLongError)):
        return 413
    if isinstance(error, ModelError):
        return 404
    return 422


def read_api_keys(path: str | Path) -> frozenset[str]:
    """One key per line; blank lines and lines starting with # are skipped."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as error:
        raise ConfigError(f"Cannot read the API key file {path}: {error.strerror}.") from None
    keys = frozenset(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))
    if not keys:
        raise ConfigError(f"The API key file {path} holds no key.")
    return keys


def key_allowed(keys: frozenset[str], offered: str | None) -> bool:
    """Constant-time comparison against every key, so timing says nothing about a key's prefix."""
    if not keys:
        return True
    if not offered:
        return False
    return any(hmac.compare_digest(offered.encode(), key.encode()) for key in keys)


def bearer_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


# --- models ----------------------------------------------------------------------------------------


class ModelRegistry:
    """The served models, each loaded once: the default at start-up (in the background, so that
    /healthz answers at once and /readyz says when it is loaded), any other shipped model on the
    first request naming it."""

    def __init__(self, default: str | None):
        from .shipped import resolve_model

        self.default_dir = resolve_model(default).resolve()
        self.default_name = self.default_dir.name
        self._models: dict[str, object] = {}
        self._lock = threading.Lock()
        self.load_error: str | None = None

    @staticmethod
    def shipped() -> dict[str, Path]:
        from .shipped import shipped_models

        return shipped_models()

    def names(self) -> list[str]:
        """What a request may name: the shipped models and the served default."""
        return sorted({*self.shipped(), self.default_name})

    def directory(self, name: str | None) -> Path:
        if not name or name in ("default", self.default_name):
            return self.default_dir
        found = self.shipped().get(name) or self.shipped().get(f"{name}-speaker")
        if found is None:  # names only: a request never picks a directory on the server
            raise ModelError(f"No model {name!r}: choose one of {', '.join(self.names())}.")
        return found

    @property
    def ready(self) -> bool:
        return str(self.default_dir) in self._models

    def get(self, name: str | None = None):
        """The loaded model a request names (None: the default); loads it the first time."""
        from .inference import load_model_quietly

        directory = str(self.directory(name))
        with self._lock:  # one load per model, however many requests name it at once
            model = self._models.get(directory)
            if model is None:
                model = self._models[directory] = load_model_quietly(directory)
            return model

    def load_default(self) -> None:
        try:
            self.get()
        except Exception as error:  # a broken model directory: /readyz reports it, the server stays up
            self.load_error = str(error) if isinstance(error, SerError) else f"{type(error).__name__}: {error}"
            logger.error(json.dumps({"event": "model_load_failed", "model": self.default_name,
                                     "error": self.load_error}))

    def labels(self, name: str | None) -> list[str]:
        """The emotions the model a request names reads, from its metadata (without loading it)."""
        return json.loads((self.directory(name) / "metadata.json").read_text())["labels"]

    def describe(self) -> list[dict]:
        out = []
        for name in self.names():
            directory = self.directory(name)
            metadata = json.loads((directory / "metadata.json").read_text())
            metrics_path = directory / "metrics.json"
            metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
            out.append({"name": name, "default": directory == self.default_dir, "loaded": str(directory) in self._models,
                        "labels": metadata.get("labels"), "recipe": metadata.get("recipe"),
                        "uncertain_below": metadata.get("calibration", {}).get("uncertain_below"),
                        "balanced_accuracy": metrics.get("balanced_accuracy")})
        return out


# --- analysis --------------------------------------------------------------------------------------


def classes_option(text: str | None) -> tuple[str, ...] | None:
    """`classes=Angry, happy,sad` → ("angry", "happy", "sad"), as `ser predict --classes` reads it
    (`named_classes`: each once, two or more); absent: None, every emotion."""
    return None if text is None else named_classes(text)


FLAG_VALUES = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def query_flag(query, name: str, default: bool) -> bool:
    """`name=true|false` (also 1/0, yes/no); absent: `default`; anything else is a 422, not a guess."""
    text = query.get(name)
    if text is None:
        return default
    value = FLAG_VALUES.get(text.strip().lower())
    if value is None:
        raise ApiError(422, f"{name} must be true or false, not {text!r}.")
    return value


def check_query(query, route: str) -> None:
    """A query parameter `route` does not take (its OpenAPI `parameters`) is a 422 naming those it does:
    a misspelt option (`speaker=2`) would otherwise be ignored and the recording read without it. So is
    one given twice (which would be a guess at which one was meant) or without a value (`speakers=`,
    which would otherwise read as absent)."""
    known = [parameter["name"] for parameter in OPENAPI["paths"][route]["post"]["parameters"]]
    unknown = [name for name in query.keys() if name not in known]
    if unknown:
        raise ApiError(422, f"Unknown query parameter {unknown[0]!r}: {route} takes {', '.join(known)}.")
    for name in query.keys():
        values = query.getlist(name)
        if len(values) > 1:
            raise ApiError(422, f"{name} is given {len(values)} times; give it once.")
        if not values[0].strip():
            raise ApiError(422, f"{name}= has no value.")


def speaker_options(query) -> SpeakerOptions:
    """`speakers=N` (the recording holds N voices; absent: found by clustering), `speaker_adaptation=true`
    and `adapt=recording`, as `ser predict --speakers N --speaker-adaptation --adapt recording`."""
    text = query.get("speakers")
    count = speaker_count(text) if text is not None else None
    adapt = query.get("adapt")
    if adapt not in (None, "recording"):
        raise ApiError(422, f"adapt must be 'recording' (each recording read against its own speech), not {adapt!r}.")
    return SpeakerOptions(count=count,
                          adapt=query_flag(query, "speaker_adaptation", DEFAULT_SPEAKERS.adapt),
                          recording=adapt == "recording")


def check_classes(labels: list[str], classes: tuple[str, ...] | None) -> None:
    """Refuse unknown emotions (`over_classes`'s sentence, as the CLI prints it) before any audio is
    read: renormalising uniform probabilities over the model's labels checks just the names."""
    over_classes(dict.fromkeys(labels, 1.0), classes)


def analysis_json(name: str, model, analysis, segments: bool, classes: tuple[str, ...] | None,
                  language: bool = False) -> dict:
    """The clip's answer; `segments` holds exactly the rows `ser predict --json --segments` prints
    (with `classes`, those of `--classes`); with `language`, what language it sounds like (as `ser
    predict --language`)."""
    model_name = model.directory.resolve().name
    out = {"file": name, "model": model_name, **judged(analysis.probabilities, classes, analysis.uncertain_below),
           "duration_s": round(analysis.audio.duration_s, 3), "warnings": list(analysis.audio.warnings),
           "adaptation": analysis.adaptation}
    if voices := analysis.voices:  # two or more voices told apart: each speaker's answer, as `ser predict --json`
        out["speakers"] = speaker_rows(voices, classes, analysis.uncertain_below)
    if segments:
        out["segments"] = segment_rows(name, analysis, classes)
    if language:
        out["language"] = guess_analysis(analysis, heard_codes(model.metadata)).to_dict()
    return out


def multipart_files(body: bytes, content_type: str) -> list[tuple[bytes, str, bytes]]:
    """(bytes, file name, field name) of every file part of a multipart/form-data body (a part named
    `file` or `files`, or any part with a file name), in order, parsed in memory."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise ApiError(422, "The multipart body has no boundary in its Content-Type.")
    parts: list[dict] = []
    header: dict = {}

    def on_part_begin():
        parts.append({"headers": {}, "data": bytearray()})

    def on_header_field(data, start, end):
        header["field"] = header.get("field", b"") + data[start:end]

    def on_header_value(data, start, end):
        header["value"] = header.get("value", b"") + data[start:end]

    def on_header_end():
        parts[-1]["headers"][header.pop("field", b"").lower()] = header.pop("value", b"")

    def on_part_data(data, start, end):
        parts[-1]["data"] += data[start:end]

    callbacks = {"on_part_begin": on_part_begin, "on_header_field": on_header_field,
                 "on_header_value": on_header_value, "on_header_end": on_header_end, "on_part_data": on_part_data}
    try:
        parser = MultipartParser(boundary, callbacks)
        parser.write(body)
        parser.finalize()
    except Exception:  # python-multipart raises several types for malformed bodies
        raise ApiError(422, "The multipart body is malformed.") from None
    files = []
    for part in parts:
        _, disposition = parse_options_header(part["headers"].get(b"content-disposition", b""))
        field_name = disposition.get(b"name", b"")
        if field_name in (b"file", b"files") or b"filename" in disposition:
            files.append((bytes(part["data"]), disposition.get(b"filename", b"audio").decode("utf-8", "replace"),
                          field_name))
    return files


def split_multipart(body: bytes, content_type: str) -> tuple[bytes, str]:
    """(the file part's bytes, its file name) of a multipart/form-data body: the part named `file`,
    else the first with a file name."""
    files = multipart_files(body, content_type)
    if not files:
        raise ApiError(422, "The multipart body has no file: send the audio in a part named 'file'.")
    data, name, _ = next((f for f in files if f[2] == b"file"), files[0])
    return data, name


def batch_files(body: bytes, content_type: str) -> list[tuple[bytes, str]]:
    """The files of a `/v1/analyze/batch` body: every file part, 1 to `MAX_BATCH_FILES` of them."""
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(422, "Send the files as multipart/form-data, one part named 'files' per file.")
    files = [(data, name) for data, name, _ in multipart_files(body, content_type)]
    if not files:
        raise ApiError(422, "The multipart body has no file: send each file in a part named 'files'.")
    if len(files) > MAX_BATCH_FILES:
        raise ApiError(413, f"{len(files)} files in one request; at most {MAX_BATCH_FILES} are read together.")
    return files


# --- the application -------------------------------------------------------------------------------


def error_response(status: int, message: str, request_id: str, headers: dict[str, str] | None = None):
    from starlette.responses import JSONResponse

    return JSONResponse({"error": message, "status": status, "request_id": request_id}, status, headers=headers)


def create_app(config: ServeConfig, registry: ModelRegistry | None = None):
    """The ASGI application; `registry` (default: one for `config.model`) is loaded at start-up."""
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.datastructures import Headers
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.middleware.cors import CORSMiddleware
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route, WebSocketRoute

    registry = registry or ModelRegistry(config.model)
    pool = AnalysisPool(config.workers, config.capacity - config.workers)
    streams = {"open": 0}

    @asynccontextmanager
    async def lifespan(app):
        asyncio.get_running_loop().run_in_executor(None, registry.load_default)
        yield
        pool.shutdown()

    def authorize(headers) -> None:
        if not key_allowed(config.api_keys, bearer_token(headers.get("authorization"))):
            raise ApiError(401, "This server needs an API key: send it as 'Authorization: Bearer KEY'.",
                           {"WWW-Authenticate": "Bearer"})

    def check_ready() -> None:
        if not registry.ready:
            message = (f"The model could not be loaded: {registry.load_error}" if registry.load_error
                       else "The model is still loading; retry in a few seconds.")
            raise ApiError(503, message, {"Retry-After": "5"})

    async def read_body(request) -> bytes:
        """The body, refused with 413 once it is longer than the limit allows (before reading it
        all when Content-Length says so)."""
        multipart = request.headers.get("content-type", "").startswith("multipart/")
        cap = config.limits.max_bytes + (MULTIPART_OVERHEAD if multipart else 0)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > cap:
            raise AudioTooLargeError(int(declared), config.limits.max_bytes)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                raise ApiError(413, f"The upload is larger than the {format_size(config.limits.max_bytes)} allowed.")
            chunks.append(chunk)
        return b"".join(chunks)

    def decoded(model, data: bytes):
        """An upload's `Audio` at the model's rate, within the server's limits (raises `SerError`)."""
        from ..io.audio import load_audio
        from .inference import native_stderr_silenced

        with native_stderr_silenced():  # decoders (libmpg123) print their own complaints to fd 2
            return load_audio(data, model.params.sample_rate, config.limits)

    def analyze_bytes(data: bytes, name: str, model_name: str | None, segments: bool,
                      classes: tuple[str, ...] | None, speakers: SpeakerOptions, language: bool, threads: int) -> dict:
        model = registry.get(model_name)
        analysis = model.with_threads(threads).analyze_audio(decoded(model, data), speakers=speakers)
        return analysis_json(name, model, analysis, segments, classes, language)

    def analyze_files(files: list[tuple[bytes, str]], model_name: str | None, segments: bool,
                      classes: tuple[str, ...] | None, speakers: SpeakerOptions, language: bool, together: bool,
                      threads: int) -> dict:
        """Each file's analysis, or the sentence it was refused with; read together (`together`), each
        against the mean of all those in which speech is found (`profile.batch_profile`, the Upload page's switch)."""
        from .profile import batch_profile

        model = registry.get(model_name).with_threads(threads)
        audios: list = []
        heard_s = 0.0
        for data, _ in files:
            try:
                audios.append(decoded(model, data))
                heard_s += audios[-1].duration_s
            except SerError as error:
                audios.append(error)
            if heard_s > config.limits.max_duration_s:
                raise ApiError(413, f"The files hold more than {config.limits.max_duration_s:g} s of audio together, "
                                    "the most one request may hold: send fewer or shorter files.")
        readable = [audio for audio in audios if not isinstance(audio, SerError)]
        profile = batch_profile(model, readable) if together else None  # speech in under two: a 422
        answers = []
        for (_, name), audio in zip(files, audios):
            if not isinstance(audio, SerError):
                try:
                    analysis = model.analyze_audio(audio, profile=profile, speakers=speakers)
                    answers.append(analysis_json(name, model, analysis, segments, classes, language))
                    continue
                except SerError as error:
                    audio = error
            answers.append({"file": name, "error": str(audio), "status": audio_error_status(audio)})
        return {"model": model.directory.resolve().name, "read_together": together,
                "adaptation": model.adaptation_note(profile), "files": answers}

    def too_busy(in_flight: int, retry_after_s: int) -> ApiError:
        return ApiError(429, f"Too many requests in flight ({in_flight}); retry in {retry_after_s} s.",
                        {"Retry-After": str(retry_after_s)})

    async def answer(request, work) -> JSONResponse:
        """`work(body, content type, threads)` run in the analysis pool on the request's body: refused
        with 429 when the pool is full, and past the timeout with 408 while the body is still arriving
        or 504 once the analysis runs. One deadline for both, from the first byte, so that a client
        sending a byte at a time (slow loris) holds its connection no longer than an analysis may run."""
        if pool.in_flight >= pool.capacity:  # a request the pool could not take is refused before its body
            raise too_busy(pool.in_flight, pool.retry_after_s())
        uploading = True
        try:
            async with asyncio.timeout(config.timeout_s):
                body = await read_body(request)
                uploading = False
                content_type = request.headers.get("content-type", "")
                try:
                    job = pool.submit(lambda threads: work(body, content_type, threads))
                except PoolFull as full:
                    raise too_busy(full.in_flight, full.retry_after_s) from None
                # A timeout cancels the wrapper, which withdraws a job still waiting in the pool; a
                # running analysis goes on to its end and only then frees its place.
                return JSONResponse(await asyncio.wrap_future(job.future))
        except TimeoutError:
            if uploading:  # the rest of the body is never read: the connection cannot carry another request
                raise ApiError(408, f"The upload did not arrive within the {config.timeout_s:g} s allowed; "
                                    "send it over a faster connection, or a smaller file.",
                               {"Connection": "close"}) from None
            raise ApiError(504, f"The analysis took longer than the {config.timeout_s:g} s allowed; "
                                "send a shorter recording or retry later.") from None

    def options(request, route: str) -> tuple[str | None, bool, tuple[str, ...] | None, SpeakerOptions, bool]:
        """The query options both analysis routes take (model, segments, classes, speakers, language), checked
        before the upload is read: an unknown parameter, emotion or speaker count is a 422 at once."""
        authorize(request.headers)
        check_ready()
        check_query(request.query_params, route)
        model_name = request.query_params.get("model")
        classes = classes_option(request.query_params.get("classes"))
        check_classes(registry.labels(model_name), classes)
        return (model_name, query_flag(request.query_params, "segments", True), classes,
                speaker_options(request.query_params), query_flag(request.query_params, "language", False))

    async def analyze(request):
        model_name, segments, classes, speakers, language = options(request, "/v1/analyze")
        filename = request.query_params.get("filename", "audio")

        def work(body: bytes, content_type: str, threads: int) -> dict:
            data, name = (split_multipart(body, content_type) if content_type.startswith("multipart/form-data")
                          else (body, filename))
            return analyze_bytes(data, name, model_name, segments, classes, speakers, language, threads)

        return await answer(request, work)

    async def analyze_batch(request):
        model_name, segments, classes, speakers, language = options(request, "/v1/analyze/batch")
        together = query_flag(request.query_params, "together", True)
        if together and speakers.recording:
            raise ApiError(422, "Read the files together or each recording against its own speech, not both: "
                                "add together=false.")

        def work(body: bytes, content_type: str, threads: int) -> dict:
            return analyze_files(batch_files(body, content_type), model_name, segments, classes, speakers,
                                 language, together, threads)

        return await answer(request, work)

    async def healthz(request):
        return JSONResponse({"status": "ok"})

    async def readyz(request):
        if registry.ready:
            return JSONResponse({"status": "ready", "model": registry.default_name})
        check_ready()

    async def models(request):
        authorize(request.headers)
        return JSONResponse({"default": registry.default_name, "models": registry.describe()})

    async def openapi(request):
        return JSONResponse(OPENAPI)

    async def docs(request):
        return HTMLResponse(docs_page(OPENAPI))

    async def stream(websocket):
        await run_stream(websocket, config, registry, streams)

    async def api_error(request, error: ApiError):
        return error_response(error.status, error.message, request.state.request_id, error.headers)

    async def ser_error(request, error: SerError):
        return error_response(audio_error_status(error), str(error), request.state.request_id)

    async def no_route(request, error: HTTPException):
        """Starlette's own refusals (no such route, a method the route does not take) as every other: JSON."""
        if error.status_code == 404:
            message = f"There is no {request.url.path}: the routes are listed at /docs."
        elif error.status_code == 405:
            message = f"{request.url.path} does not take {request.method}; it takes {error.headers['Allow']}."
        else:
            message = f"{error.detail}."
        return error_response(error.status_code, message, request.state.request_id, error.headers)

    async def unexpected(request, error: Exception):
        logger.exception("request %s failed", request.state.request_id)
        return error_response(500, "The server failed on this request; it has been logged.", request.state.request_id)

    class JsonCorsMiddleware(CORSMiddleware):
        """Starlette's CORS, whose refused preflight (a plain-text 400) is answered as every other refusal."""

        async def __call__(self, scope, receive, send):
            headers = Headers(scope=scope) if scope["type"] == "http" else None
            if not (headers and scope["method"] == "OPTIONS" and "origin" in headers
                    and "access-control-request-method" in headers):  # not a preflight: Starlette's own way
                return await super().__call__(scope, receive, send)
            response = self.preflight_response(headers)
            if response.status_code == 400:
                origin = headers["origin"]
                message = (f"Pages on {origin} may not call this API: it takes cross-origin requests from the "
                           "origins given with --cors-origin." if not self.is_allowed_origin(origin) else
                           "The browser asked to send a method or header this API does not take: it takes GET and "
                           "POST with the Authorization and Content-Type headers.")
                cors = {k: v for k, v in response.headers.items() if k.startswith("access-control-") or k == "vary"}
                response = error_response(400, message, scope["state"]["request_id"], cors)
            await response(scope, receive, send)

    middleware = [Middleware(AccessLog)]
    if config.cors_origins:
        middleware.append(Middleware(JsonCorsMiddleware, allow_origins=list(config.cors_origins),
                                     allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"],
                                     expose_headers=["X-Request-ID", "Retry-After"]))  # headers the docs point to
    app = Starlette(
        routes=[Route("/v1/analyze", analyze, methods=["POST"]),
                Route("/v1/analyze/batch", analyze_batch, methods=["POST"]), WebSocketRoute("/v1/stream", stream),
                Route("/v1/models", models), Route("/healthz", healthz), Route("/readyz", readyz),
                Route("/openapi.json", openapi), Route("/docs", docs)],
        middleware=middleware, lifespan=lifespan,
        exception_handlers={ApiError: api_error, SerError: ser_error, HTTPException: no_route, Exception: unexpected},
    )
    app.state.registry, app.state.pool, app.state.config = registry, pool, config
    return app


class AccessLog:
    """One JSON line per request or stream: method, path, status, bytes, duration, request id and the
    client's address. Never the body, the audio, headers or the query string."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        request_id = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.monotonic()
        record = {"request_id": request_id, "method": scope.get("method", "WS"), "path": scope["path"],
                  "status": None, "bytes_in": 0, "bytes_out": 0}

        def size(message) -> int:
            """Bytes of an HTTP body chunk or a WebSocket message (text counted as its UTF-8)."""
            data = message.get("body") or message.get("bytes") or message.get("text") or b""
            return len(data.encode() if isinstance(data, str) else data)

        async def counting_receive():
            message = await receive()
            record["bytes_in"] += size(message)
            if message["type"] == "websocket.disconnect":  # the client closed first: its code
                record.setdefault("close_code", message.get("code", 1005))
            return message

        async def tagged_send(message):
            if message["type"] == "http.response.start":
                record["status"] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            elif message["type"] in ("http.response.body", "websocket.send"):
                record["bytes_out"] += size(message)
            elif message["type"] == "websocket.accept":
                record["status"] = 101
            elif message["type"] == "websocket.close":
                record.setdefault("close_code", message.get("code", 1000))
            await send(message)

        try:
            await self.app(scope, counting_receive, tagged_send)
        except Exception:
            if scope["type"] == "websocket" and record["status"] == 101:
                record.setdefault("close_code", 1006)  # uvicorn drops the connection without a close frame
            raise
        finally:
            client = scope.get("client")
            if record["status"] is None and scope["type"] == "http":
                record["status"] = 500  # an unhandled error: ServerErrorMiddleware, outside this one, answers
            record.update(duration_ms=round(1000 * (time.monotonic() - started), 1), client=client[0] if client else None)
            access_logger.info(json.dumps(record))


# --- the live stream -------------------------------------------------------------------------------


def is_end_message(text: str | None) -> bool:
    """Whether a stream's text message is `{"type": "end"}`, however it is spaced."""
    try:
        return json.loads(text or "") == {"type": "end"}
    except ValueError:
        return False


def reading_json(reading, classes: tuple[str, ...] | None, uncertain_below: float) -> dict:
    """A live reading; over `classes` when the stream asked for them (`judged`). A pause has no emotion."""
    level = reading.level_dbfs
    out = {"type": "reading", "time_s": round(reading.time_s, 3),
           "level_dbfs": round(level, 1) if math.isfinite(level) else None, "pause": reading.pause,
           "emotion": None, "confidence": None, "uncertain": False, "arousal": None, "speech_s": round(reading.speech_s, 3),
           "probabilities": None}
    if not reading.pause:
        out.update(judged(reading.probabilities, classes, uncertain_below))
    return out


class StreamRefused(Exception):
    """A stream's first message refused, with the sentence the client gets before close code 1008."""


@dataclass(frozen=True)
class StreamSettings:
    """A stream's first message, checked (`parse`)."""

    sample_rate: int
    channels: int
    model: str | None
    classes: tuple[str, ...] | None
    api_key: str | None

    @classmethod
    def parse(cls, text: str | None) -> StreamSettings:
        """Every setting of its type, and nothing else: a value of another type (a rate of 1e999, a model
        named by a list, a key that is a number) is refused with a sentence instead of failing later."""
        try:
            settings = json.loads(text or "")
        except ValueError:
            settings = None
        if not isinstance(settings, dict) or "sample_rate" not in settings:
            raise StreamRefused('The first message must be JSON with the sample rate, such as {"sample_rate": 48000}.')
        if unknown := [name for name in settings if name not in STREAM_SETTINGS]:  # a misspelt one is not ignored
            raise StreamRefused(f"Unknown setting {unknown[0]!r} in the first message: it takes "
                                f"{', '.join(STREAM_SETTINGS)}.")
        sample_rate, channels = settings["sample_rate"], settings.get("channels", 1)
        for name, value in (("sample_rate", sample_rate), ("channels", channels)):
            whole = (isinstance(value, int) and not isinstance(value, bool)) or (
                isinstance(value, float) and value.is_integer())  # False for infinity and NaN
            if not whole:
                raise StreamRefused(f'"{name}" must be a whole number, such as {{"sample_rate": 48000, "channels": 1}}.')
        sample_rate, channels = int(sample_rate), int(channels)
        if not STREAM_RATES[0] <= sample_rate <= STREAM_RATES[1] or not 1 <= channels <= 8:
            raise StreamRefused(f"A sample rate of {sample_rate} Hz with {channels} channel{'s' * (channels != 1)} is "
                                f"not one this stream takes ({STREAM_RATES[0]}-{STREAM_RATES[1]} Hz, 1-8 channels).")
        if "model" in settings and not (isinstance(settings["model"], str) and settings["model"].strip()):
            raise StreamRefused('"model" must be a name from /v1/models, as a string.')
        if not isinstance(settings.get("api_key", ""), str):
            raise StreamRefused('"api_key" must be the key as a string.')
        classes = settings.get("classes")
        if classes is not None and not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
            raise StreamRefused('"classes" must be a list of emotion names, such as ["angry", "happy", "sad", "neutral"].')
        return cls(sample_rate, channels, settings.get("model"), classes_option(",".join(classes)) if classes else None,
                   settings.get("api_key"))


def origin_allowed(origin: str | None, host: str | None, cors_origins: tuple[str, ...]) -> bool:
    """Whether a WebSocket may be opened from a page on `origin`: the server's own origin (its host and
    port as the Host header names them) or one given with --cors-origin. Browsers send an Origin on
    every WebSocket and cannot forge it, and CORS does not apply to WebSockets, so this is the only
    check that keeps other sites' pages off the stream; clients without an Origin are not browsers."""
    from urllib.parse import urlsplit

    if origin is None or origin in cors_origins or "*" in cors_origins:
        return True
    return bool(host) and urlsplit(origin).netloc.lower() == host.lower()


async def run_stream(websocket, config: ServeConfig, registry: ModelRegistry, streams: dict) -> None:
    """The first message is JSON (`sample_rate`, optional `channels`, `model`, `classes`, `api_key`); every
    later one is binary 16-bit little-endian PCM, channels interleaved. The server sends a reading
    (as the Live page shows) twice a second while audio arrives; errors are one JSON message and a
    close with code 1008."""
    from starlette.websockets import WebSocketDisconnect

    from .live import LiveClassifier

    await websocket.accept()  # before any check: refused before the handshake, a browser sees no sentence, only 1006

    async def refuse(message: str, code: int = 1008) -> None:
        await websocket.send_json({"type": "error", "error": message})
        await websocket.close(code)

    origin = websocket.headers.get("origin")
    if not origin_allowed(origin, websocket.headers.get("host"), config.cors_origins):
        return await refuse(f"Pages on {origin} may not open a stream: the server takes streams from its own origin "
                            "and those given with --cors-origin.")
    try:
        first = await asyncio.wait_for(websocket.receive(), timeout=config.timeout_s)
    except TimeoutError:
        return await refuse(f"No first message within {config.timeout_s:g} s.")
    if first["type"] == "websocket.disconnect":
        return
    try:
        settings = StreamSettings.parse(first.get("text"))
    except (StreamRefused, SerError) as refused:  # SerError: emotions named once or fewer (`named_classes`)
        return await refuse(str(refused))
    sample_rate, channels, classes = settings.sample_rate, settings.channels, settings.classes
    offered = settings.api_key or bearer_token(websocket.headers.get("authorization"))
    if not key_allowed(config.api_keys, offered):
        return await refuse("This server needs an API key: send it as 'api_key' in the first message.")
    if not registry.ready:
        return await refuse("The model is still loading; retry in a few seconds.", 1013)
    if streams["open"] >= config.stream_capacity:
        return await refuse(f"Too many streams open ({streams['open']}); retry later.", 1013)
    try:
        model = await asyncio.get_running_loop().run_in_executor(None, registry.get, settings.model)
        check_classes(model.labels, classes)
    except SerError as error:
        return await refuse(str(error))
    streams["open"] += 1
    classifier = LiveClassifier(model, interval_s=STREAM_INTERVAL_S)

    async def send_readings():
        last_sent = float("-inf")  # the history is a bounded deque: new readings are found by their time
        while True:
            await asyncio.sleep(STREAM_INTERVAL_S / 2)
            for reading in classifier.snapshot().history:
                if reading.time_s > last_sent:
                    await websocket.send_json(reading_json(reading, classes, model.uncertain_below))
                    last_sent = reading.time_s

    sender = asyncio.create_task(send_readings())
    received_samples, cap_samples = 0, config.limits.max_duration_s * sample_rate
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            data = message.get("bytes")
            if data is None:
                if is_end_message(message.get("text")):
                    break
                return await refuse("After the first message, send audio as binary 16-bit PCM messages.")
            if len(data) > MAX_STREAM_MESSAGE or len(data) % (2 * channels):
                return await refuse(f"Each audio message must be whole 16-bit frames of {channels} channel(s), "
                                    f"at most {MAX_STREAM_MESSAGE // 1024} KiB.")
            samples = np.frombuffer(data, dtype="<i2").reshape(-1, channels)
            received_samples += len(samples)
            if received_samples > cap_samples:
                return await refuse(f"The stream is longer than the {config.limits.max_duration_s:g} s allowed.")
            classifier.push(samples, sample_rate)
    except WebSocketDisconnect:
        pass
    finally:
        sender.cancel()
        streams["open"] -= 1
        await asyncio.get_running_loop().run_in_executor(None, classifier.stop)
    try:
        await websocket.close(1000)
    except (RuntimeError, WebSocketDisconnect):  # the client had already closed
        pass


# --- OpenAPI and the docs page ------------------------------------------------------------------------

_ERROR = {"description": "A refusal", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_AROUSAL = {"type": ["number", "null"], "minimum": 0, "maximum": 1,
            "description": "how aroused the voice sounds, 0 low (neutral, calm, sad) to 1 high (happy, angry, fearful, "
                           "surprised): their probability over that of either group, from all the model's emotions "
                           "whatever `classes` chose; high from 0.5. In languages the model never heard it is read "
                           "right far more often than chance, where the emotion is often near it (bench/results/arousal.md)"}
_PROBABILITIES = {"type": "object", "additionalProperties": {"type": "number"}}
_JUDGED = ["emotion", "confidence", "uncertain", "arousal", "probabilities"]  # every reading's (`results.judged`)
_SPEAKER = {"type": "string", "description": 'who spoke: "S1", "S2", … in order of first appearance; "" where '
                                             "voices are not told apart (the speaker model is not installed)"}
_ANALYSIS_PARAMETERS = [
    {"name": "segments", "in": "query", "schema": {"type": "boolean", "default": True},
     "description": "include the per-segment rows"},
    {"name": "model", "in": "query", "schema": {"type": "string"}, "description": "a name from /v1/models"},
    {"name": "classes", "in": "query", "schema": {"type": "string"}, "example": "angry,happy,sad,neutral",
     "description": "comma-separated emotions the application uses: probabilities renormalised over them "
                    "(as `ser predict --classes`), the model's uncertainty threshold applied to the "
                    "renormalised confidence; an unknown name is a 422"},
    {"name": "speakers", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_SPEAKERS},
     "description": "how many people speak in the recording, when you know (as `ser predict --speakers`); "
                    "absent: found by grouping the utterances by voice"},
    {"name": "speaker_adaptation", "in": "query", "schema": {"type": "boolean", "default": False},
     "description": "read each speaker with enough speech against their own voice in the recording "
                    "(as `ser predict --speaker-adaptation`)"},
    {"name": "adapt", "in": "query", "schema": {"type": "string", "enum": ["recording"]},
     "description": "recording: every utterance read against the mean of the recording's own speech, every voice "
                    "in it (as `ser predict --adapt recording`; for a language the model never heard)"},
    {"name": "language", "in": "query", "schema": {"type": "boolean", "default": False},
     "description": "say which language the speech sounds like and whether the model heard it in training "
                    "(as `ser predict --language`): `language` in each analysis"}]
OPENAPI = {
    "openapi": "3.1.0",
    "info": {"title": "ser: speech emotion recognition", "version": "1",
             "description": "Audio in, one of the model's emotions out, per clip and per speech segment. See docs/api.md."},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                       "description": "Only when the server runs with --api-key-file."}},
        "schemas": {
            "Error": {"type": "object", "required": ["error", "status", "request_id"],
                      "properties": {"error": {"type": "string",
                                               "description": "One sentence for the person who sent the audio"},
                                     "status": {"type": "integer"}, "request_id": {"type": "string"}}},
            "Segment": {"type": "object", "description": "One row of `ser predict --json --segments`",
                        "required": ["file", "segment", "start_s", "end_s", "speaker", *_JUDGED],
                        "properties": {"file": {"type": "string"}, "segment": {"type": "integer"},
                                       "start_s": {"type": "number"}, "end_s": {"type": "number"},
                                       "speaker": _SPEAKER,
                                       "emotion": {"type": "string"}, "confidence": {"type": "number"},
                                       "uncertain": {"type": "boolean"}, "arousal": _AROUSAL,
                                       "probabilities": _PROBABILITIES}},
            "Analysis": {"type": "object", "required": ["file", "model", *_JUDGED, "duration_s", "warnings", "adaptation"],
                         "properties": {
                "file": {"type": "string"}, "model": {"type": "string"}, "emotion": {"type": "string"},
                "confidence": {"type": "number"},
                "uncertain": {"type": "boolean", "description": "confidence below the model's calibrated threshold"},
                "arousal": _AROUSAL, "probabilities": _PROBABILITIES, "duration_s": {"type": "number"},
                "warnings": {"type": "array", "items": {"type": "string"},
                             "description": "the sentences `ser predict` prints as `warning:` lines"},
                "adaptation": {"type": "string", "description": "what the reading was adapted to, in a sentence "
                                                                "(empty when it was not)"},
                "speakers": {"type": "array", "description": "only where two or more voices were told apart: each "
                                                             "speaker's answer (the mean over everyone describes no one)",
                             "items": {"type": "object", "required": ["speaker", "speech_s", "share", *_JUDGED],
                                       "properties": {
                                 "speaker": _SPEAKER, "speech_s": {"type": "number"},
                                 "share": {"type": "number", "description": "of the speaking time"},
                                 "emotion": {"type": "string"}, "confidence": {"type": "number"},
                                 "uncertain": {"type": "boolean"}, "arousal": _AROUSAL,
                                 "probabilities": _PROBABILITIES}}},
                "segments": {"type": "array", "items": {"$ref": "#/components/schemas/Segment"}},
                "language": {"type": "object", "description": "with language=true: what language the speech sounds "
                                                              "like (Whisper's code and name, its probability), whether "
                                                              "the model heard it in training, whether the guess is sure "
                                                              f"(probability {SURE_ABOVE:g} or more), the seconds of speech "
                                                              f"it read (no guess under {MIN_SPEECH_S:g} s: code empty)",
                             "required": ["code", "name", "probability", "heard_in_training", "sure", "speech_s"],
                             "properties": {"code": {"type": "string"}, "name": {"type": "string"},
                                            "probability": {"type": "number"},
                                            "heard_in_training": {"type": ["boolean", "null"]},
                                            "sure": {"type": "boolean"}, "speech_s": {"type": "number"}}}}},
            "Batch": {"type": "object", "required": ["model", "read_together", "adaptation", "files"], "properties": {
                "model": {"type": "string"}, "read_together": {"type": "boolean"},
                "adaptation": {"type": "string", "description": "what reading together did, in a sentence"},
                "files": {"type": "array", "items": {"oneOf": [
                    {"$ref": "#/components/schemas/Analysis"},
                    {"type": "object", "required": ["file", "error", "status"],
                     "properties": {"file": {"type": "string"}, "error": {"type": "string"},
                                    "status": {"type": "integer", "description": "what /v1/analyze would answer"}}}]}}}},
        },
    },
    "security": [{}, {"bearer": []}],
    "paths": {
        "/v1/analyze": {"post": {
            "summary": "Emotion of one recording (any common audio or video format)",
            "parameters": [*_ANALYSIS_PARAMETERS,
                {"name": "filename", "in": "query", "schema": {"type": "string"},
                 "description": "the name echoed in `file` for a raw body"}],
            "requestBody": {"required": True, "content": {
                "multipart/form-data": {"schema": {"type": "object",
                                                   "properties": {"file": {"type": "string", "format": "binary"}}}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
            "responses": {"200": {"description": "The analysis", "content": {
                              "application/json": {"schema": {"$ref": "#/components/schemas/Analysis"}}}},
                          **dict.fromkeys(("401", "404", "408", "413", "422", "429", "503", "504"), _ERROR)}}},
        "/v1/analyze/batch": {"post": {
            "summary": "Several recordings, read together: each against the mean of all of them",
            "description": f"One multipart part named `files` per file (at most {MAX_BATCH_FILES}; together within one upload's "
                           "byte and duration limits). A file that cannot be read gets its sentence in place of "
                           "its analysis. Read together, speech must be found in two files or more (else 422).",
            "parameters": [*_ANALYSIS_PARAMETERS,
                {"name": "together", "in": "query", "schema": {"type": "boolean", "default": True},
                 "description": "read each file against the mean of all the files in which speech is found, no labels used "
                                "(as `ser predict --adapt batch` and the Upload page's switch); false: one by one"}],
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "properties": {"files": {"type": "array",
                                                           "items": {"type": "string", "format": "binary"}}}}}}},
            "responses": {"200": {"description": "Each file's analysis or refusal", "content": {
                              "application/json": {"schema": {"$ref": "#/components/schemas/Batch"}}}},
                          **dict.fromkeys(("401", "404", "408", "413", "422", "429", "503", "504"), _ERROR)}}},
        "/v1/stream": {"get": {
            "summary": "WebSocket: live readings twice a second",
            "description": 'Upgrade to a WebSocket. First message: JSON {"sample_rate": 48000, "channels": 1, '
                           '"model": NAME, "classes": [EMOTION, ...], "api_key": KEY}; then binary 16-bit '
                           'little-endian PCM. Server messages: '
                           '{"type": "reading", ...} (`time_s`: wall-clock seconds since the first audio; each reading '
                           'of the latest window) or {"type": "error", "error": SENTENCE} followed by close code '
                           '1008 (1013: busy, retry later; 1009 from uvicorn: a message over its size limit). A page '
                           'on an origin other than the server\'s own or one given with --cors-origin is refused (1008).',
            "responses": {"101": {"description": "Switching protocols"}}}},
        "/v1/models": {"get": {"summary": "The models a request may name",
                               "responses": {"200": {"description": "Models"}, "401": _ERROR}}},
        "/healthz": {"get": {"summary": "The process answers", "security": [{}],
                             "responses": {"200": {"description": "ok"}}}},
        "/readyz": {"get": {"summary": "The default model is loaded", "security": [{}],
                            "responses": {"200": {"description": "ready"}, "503": _ERROR}}},
    },
}


def docs_page(schema: dict) -> str:
    """A plain HTML page of the routes, from the OpenAPI schema: no script from a CDN."""
    from html import escape

    rows = []
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            params = ", ".join(p["name"] for p in operation.get("parameters", []))
            detail = f"<br><small>{escape(operation['description'])}</small>" if "description" in operation else ""
            rows.append(f"<tr><td><code>{method.upper()} {escape(path)}</code></td><td>{escape(operation['summary'])}"
                        f"{detail}</td><td>{escape(params)}</td><td>{', '.join(operation['responses'])}</td></tr>")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>ser API</title></head><body>"
            f"<h1>{escape(schema['info']['title'])}</h1><p>{escape(schema['info']['description'])} "
            "The machine-readable schema is at <a href='/openapi.json'>/openapi.json</a>.</p>"
            "<table border='1' cellpadding='4'><tr><th>route</th><th>what</th><th>query</th><th>statuses</th></tr>"
            + "".join(rows) + "</table></body></html>")


# --- the command -----------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="the model served when a request names none: a shipped name or a directory "
                   "(default: SER_MODEL, else the shipped default)")
    p.add_argument("--host", default="127.0.0.1", help="127.0.0.1 (default) or 0.0.0.0 behind a proxy")
    p.add_argument("--port", type=int, default=8000, help="default: 8000")
    p.add_argument("--workers", type=int, default=default_workers(),
                   help="analyses at once (default: one per core and one more)")
    p.add_argument("--queue", type=int, help="analyses waiting beyond the workers before 429 (default: 2 per worker)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request, from its first byte: 408 while the upload is still arriving, 504 after")
    p.add_argument("--max-bytes", type=int,
                   help=f"largest upload (default: SER_MAX_BYTES or {SERVE_MAX_BYTES // 2**20} MiB)")
    p.add_argument("--max-duration", type=float,
                   help=f"longest audio in seconds (default: SER_MAX_DURATION_S or {SERVE_MAX_DURATION_S:g})")
    p.add_argument("--max-streams", type=int, help="WebSocket streams at once (default: 4 per worker)")
    p.add_argument("--api-key-file", help="one key per line: requests then need 'Authorization: Bearer KEY'")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="let browsers on ORIGIN call the API (repeatable); CORS is off by default")


def config_from_args(args) -> ServeConfig:
    """The options, checked; the limits are the flags, else SER_MAX_BYTES / SER_MAX_DURATION_S (as the
    CLI reads them), else the API's own defaults, smaller than the app's."""
    from ..io.audio import LIMIT_ENV

    for name, value in (("--workers", args.workers), ("--queue", args.queue), ("--max-streams", args.max_streams),
                        ("--timeout", args.timeout), ("--max-bytes", args.max_bytes), ("--max-duration", args.max_duration)):
        if value is not None and (value < 0 or (value == 0 and name != "--queue")):
            raise ConfigError(f"{name} must be {'0 or more' if name == '--queue' else 'positive'}, not {value}.")
    if not 1 <= args.port <= 65535:
        raise ConfigError(f"--port must be from 1 to 65535, not {args.port}.")
    env = AudioLimits.from_env()
    limits = replace(
        env,
        max_bytes=args.max_bytes or (env.max_bytes if os.environ.get(LIMIT_ENV["max_bytes"]) else SERVE_MAX_BYTES),
        max_duration_s=args.max_duration or (env.max_duration_s if os.environ.get(LIMIT_ENV["max_duration_s"])
                                             else SERVE_MAX_DURATION_S))
    return ServeConfig(model=args.model, workers=args.workers, queue=args.queue, timeout_s=args.timeout,
                       max_streams=args.max_streams, limits=limits,
                       api_keys=read_api_keys(args.api_key_file) if args.api_key_file else frozenset(),
                       cors_origins=tuple(args.cors_origin))


def cmd_serve(args) -> int:
    require_extra("ser serve", "serve", "python_multipart", "starlette", "uvicorn")
    import uvicorn

    from .speakers import INSTALL_COMMAND, encoder_installed

    config = config_from_args(args)
    registry = ModelRegistry(config.model)  # an unknown model fails here, before the port is opened
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logger.info(json.dumps({"event": "serving", "model": registry.default_name, "host": args.host, "port": args.port,
                            "workers": config.workers, "capacity": config.capacity, "api_keys": len(config.api_keys),
                            "cors_origins": list(config.cors_origins), "speaker_model": encoder_installed()}))
    if not encoder_installed():
        logger.warning(json.dumps({"event": "no_speaker_model", "speaker": "", "install": INSTALL_COMMAND}))
    uvicorn.run(create_app(config, registry), host=args.host, port=args.port, access_log=False,
                log_level="warning", ws_max_size=MAX_STREAM_MESSAGE + 4096, timeout_graceful_shutdown=10)
    return 0
