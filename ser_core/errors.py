"""Typed errors whose messages are written for the person who supplied the audio.

Every failure ser_core expects from user input is one of these; the CLI prints `str(error)` as one
line and the app shows it with `st.error`, so the message must make sense without a traceback.
"""


class SerError(Exception):
    """Base class of every error ser_core raises on purpose."""


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
    def __init__(self, duration_s: float, maximum_s: float):
        self.duration_s = duration_s
        super().__init__(
            f"The audio is too long: {duration_s / 60:.1f} min, at most {maximum_s / 60:.1f} min allowed."
        )


class AudioTooLargeError(AudioError):
    def __init__(self, n_bytes: int, maximum_bytes: int):
        super().__init__(
            f"The file is too large: {n_bytes / 2**20:.1f} MiB, at most {maximum_bytes / 2**20:.0f} MiB allowed."
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


class ModelError(SerError):
    """A model directory is missing, incomplete or inconsistent."""


class ManifestError(SerError):
    """A manifest or split file cannot be used."""
