"""Typed errors whose messages are written for the person who supplied the audio.

Every failure ser_core expects from user input is one of these; the CLI prints `str(error)` as one
line and the app shows it with `st.error`, so the message must make sense without a traceback.
"""


class SerError(Exception):
    """Base class of every error ser_core raises on purpose."""

    def __reduce__(self):
        # Subclasses take their own arguments, which pickle does not keep: rebuild from the message
        # and attributes, so that errors cross process boundaries (worker pools) intact.
        return _rebuild, (type(self), str(self), self.__dict__)


def _rebuild(cls, message, state):
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


def format_duration(seconds: float) -> str:
    """3.2 s, 12.5 min, 2 h 1 min: a duration in the units a person would use for it."""
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def format_size(n_bytes: int) -> str:
    """293 KiB, 4.5 MiB, 200 MiB: a size in the unit a person would use, to about three figures, so that
    a limit below 1 MiB does not read as 0 MiB and one of 4.5 MiB not as 4."""
    value, unit = float(n_bytes), "bytes"
    for scale, name in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n_bytes >= scale:
            value, unit = n_bytes / scale, name
            break
    text = f"{value:.{2 if value < 10 else 1 if value < 100 else 0}f}"
    return f"{text.rstrip('0').rstrip('.') if '.' in text else text} {unit}"


class AudioError(SerError):
    """The input cannot be turned into usable audio."""


class NotAudioError(AudioError):
    def __init__(self, detail: str = ""):
        message = "This is not an audio file we can read, or it is corrupt"
        super().__init__(f"{message} ({detail})." if detail else f"{message}.")


class AudioTooShortError(AudioError):
    def __init__(self, duration_s: float, minimum_s: float):
        self.duration_s = duration_s
        super().__init__(
            f"The audio is empty or too short: {duration_s:.2f} s, at least {minimum_s:.2f} s needed."
        )


class AudioTooLongError(AudioError):
    def __init__(self, duration_s: float, maximum_s: float, still_decoding: bool = False):
        """`still_decoding`: the cap was passed while decoding, so the full length is unknown."""
        self.duration_s = duration_s
        if still_decoding:
            super().__init__(f"The audio is too long: longer than the {format_duration(maximum_s)} allowed.")
        else:
            length, limit = format_duration(duration_s), format_duration(maximum_s)
            if length == limit:  # just over the limit, the two round alike
                length, limit = f"{duration_s:,.0f} s", f"{maximum_s:,.0f} s"
            super().__init__(f"The audio is too long: {length}, at most {limit} allowed.")


class AudioTooLargeError(AudioError):
    def __init__(self, n_bytes: int, maximum_bytes: int):
        size, limit = format_size(n_bytes), format_size(maximum_bytes)
        if size == limit:  # just over the limit, the two round alike: "4 MiB, at most 4 MiB" would read as no refusal
            size, limit = f"{n_bytes:,} bytes", f"{maximum_bytes:,} bytes"
        super().__init__(f"The file is too large: {size}, at most {limit} allowed.")


class DecodeTimeoutError(AudioError):
    def __init__(self, limit_s: float):
        self.limit_s = limit_s
        super().__init__(
            f"Decoding was stopped after {limit_s:g} s: the file is too long or too complex to decode here."
        )


class NonFiniteAudioError(AudioError):
    def __init__(self):
        super().__init__("The audio contains invalid samples (NaN or infinity); it is corrupt.")


class NoSpeechError(AudioError):
    def __init__(self, level_dbfs: float, threshold_dbfs: float):
        self.level_dbfs = level_dbfs
        level = "digital silence" if level_dbfs == float("-inf") else f"{level_dbfs:.0f} dBFS at its loudest"
        super().__init__(
            f"No speech found: the audio is {level}, below the {threshold_dbfs:.0f} dBFS needed to hear a voice."
        )


class NoVoiceActivityError(NoSpeechError):
    """Loud enough, but voice activity detection heard no voice in it: music, noise, a hum."""

    def __init__(self, duration_s: float, level_dbfs: float):
        self.duration_s, self.level_dbfs = duration_s, level_dbfs
        AudioError.__init__(
            self,
            f"No speech found: voice activity detection heard no voice in the {format_duration(duration_s)} of "
            f"audio (loudest 50 ms at {level_dbfs:.0f} dBFS: noise, music or silence?), so no emotion is named.",
        )


class ConfigError(SerError):
    """A setting (such as an environment variable) has a value ser_core cannot use."""


class ExtraMissingError(ConfigError):
    """A command whose packages come with an extra, run where it is not installed (a wheel alone)."""

    def __init__(self, what: str, extras: str):
        super().__init__(f"{what} needs its extra: pip install 'ser[{extras}]'.")


def require_extra(what: str, extras: str, *modules: str) -> None:
    """`ExtraMissingError` unless every one of `modules` can be imported: one sentence naming the extra
    instead of a ModuleNotFoundError's traceback, before any work starts."""
    import importlib.util

    if any(importlib.util.find_spec(module) is None for module in modules):
        raise ExtraMissingError(what, extras)


class ModelError(SerError):
    """A model directory is missing, incomplete or inconsistent."""


class ManifestError(SerError):
    """A manifest or split file cannot be used."""
