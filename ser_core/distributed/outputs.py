"""What a batch prediction writes: one row per input file (`prediction_row`, `prediction_schema`),
streamed by `write_rows` as Parquet or CSV to a local path or a URI."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

from .inputs import is_uri, open_filesystem

if TYPE_CHECKING:
    from ..serving.results import Analysis, SpeakerSummary


def prediction_row(path: str, analysis: "Analysis | None", error: str | None, labels: Sequence[str],
                   timeline: bool = False) -> dict:
    """One output row (see `prediction_schema`): probabilities, top emotion, uncertain flag, arousal,
    and each speaker's reading where two or more voices were told apart."""
    row: dict = {"path": path, "emotion": None, "confidence": None, "uncertain": None, "arousal": None,
                **{f"p_{label}": None for label in labels}, "speakers": [], "duration_s": None, "n_windows": None,
                "warnings": [], "adaptation": None, "error": error}
    if timeline:
        row["window_start_s"] = row["window_probabilities"] = None
    if analysis is not None:
        row.update(emotion=analysis.emotion, confidence=analysis.confidence, uncertain=analysis.is_uncertain,
                   arousal=analysis.arousal, duration_s=analysis.audio.duration_s, n_windows=len(analysis.window_times_s),
                   warnings=list(analysis.warnings), adaptation=analysis.adaptation, error=None,
                   speakers=speaker_records(analysis))
        row.update({f"p_{label}": p for label, p in analysis.probabilities.items()})
        if timeline:
            row["window_start_s"] = [float(t) for t in analysis.window_times_s]
            row["window_probabilities"] = analysis.window_probabilities.tolist()
    return row


def speaker_records(analysis: "Analysis") -> list[dict]:
    """The `speakers` column: per speaker (`Analysis.voices`), unrounded, probabilities in label order."""
    return [{"speaker": v.speaker, "speech_s": v.speech_s, "share": v.share, "emotion": v.emotion,
             "confidence": v.confidence, "uncertain": v.uncertain, "arousal": v.arousal,
             "probabilities": [v.probabilities[label] for label in analysis.labels]} for v in analysis.voices]


def speakers_from_records(records: Sequence[dict], labels: Sequence[str]) -> tuple["SpeakerSummary", ...]:
    """`speaker_records` back into what `ser predict` prints from (`results.speaker_rows` reads each
    speaker's name, speech, share and probabilities; their speaking time by emotion is not in the table)."""
    from ..serving.results import SpeakerSummary

    return tuple(SpeakerSummary(r["speaker"], r["speech_s"], r["share"], dict(zip(labels, r["probabilities"])),
                                {}, r["uncertain"]) for r in records)


def _speaker_type():
    import pyarrow as pa

    return pa.struct([("speaker", pa.string()), ("speech_s", pa.float64()), ("share", pa.float64()),
                      ("emotion", pa.string()), ("confidence", pa.float64()), ("uncertain", pa.bool_()),
                      ("arousal", pa.float64()), ("probabilities", pa.list_(pa.float64()))])


def prediction_schema(labels: Sequence[str], timeline: bool = False, metadata: dict | None = None):
    """The output table, one row per input file:

    | column | type | |
    |---|---|---|
    | path | string | the input as listed (local path or URI) |
    | emotion | string | top emotion; null when `error` |
    | confidence | double | its calibrated probability |
    | uncertain | bool | confidence below the model's `uncertain_below` (fitted on validation) |
    | arousal | double | how aroused the voice sounds, 0 low to 1 high (`serving.results.arousal`); null without either level |
    | p_LABEL | double | one column per label, in the model's order: mean over windows |
    | speakers | list<struct> | where two or more voices were told apart, one per speaker ("S1", … by first appearance): speaker, speech_s, share of the speaking time, emotion, confidence, uncertain, arousal, probabilities (label order); else empty |
    | duration_s | double | decoded duration |
    | n_windows | int32 | analysis windows covering the audio |
    | warnings | list<string> | input warnings (clipping, telephone band, …) |
    | adaptation | string | what the reading was adapted to (--profile, --speaker-adaptation, --adapt recording), or why not; empty without |
    | error | string | why the file could not be used; null otherwise |
    | window_start_s | list<double> | with --timeline: start of each window |
    | window_probabilities | list<list<double>> | with --timeline: per window, per label |

    In CSV, list columns are JSON text. Parquet files carry `ser.*` metadata: model directory,
    weights sha256, labels, uncertain_below, engine."""
    import pyarrow as pa

    fields = [("path", pa.string()), ("emotion", pa.string()), ("confidence", pa.float64()),
              ("uncertain", pa.bool_()), ("arousal", pa.float64()), *((f"p_{label}", pa.float64()) for label in labels),
              ("speakers", pa.list_(_speaker_type())), ("duration_s", pa.float64()), ("n_windows", pa.int32()),
              ("warnings", pa.list_(pa.string())), ("adaptation", pa.string()), ("error", pa.string())]
    if timeline:
        fields += [("window_start_s", pa.list_(pa.float64())), ("window_probabilities", pa.list_(pa.list_(pa.float64())))]
    return pa.schema(fields, metadata={f"ser.{k}": str(v) for k, v in (metadata or {}).items()})


def _open_output(out: str):
    if is_uri(out):
        filesystem, path = open_filesystem(out)
        return filesystem.open_output_stream(path)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    return open(out, "wb")


def write_rows(rows: Iterable[dict], out: str, schema, rows_per_group: int = 10_000) -> int:
    """Rows → Parquet (`.parquet`) or CSV (anything else), streamed in groups; returns the count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = schema.names
    n = 0
    with _open_output(out) as sink:
        if out.endswith(".parquet"):
            with pq.ParquetWriter(sink, schema) as writer:
                for group in _groups(rows, rows_per_group):
                    writer.write_table(pa.Table.from_pylist([complete_row(r, names) for r in group], schema=schema))
                    n += len(group)
            return n
        text = io.TextIOWrapper(sink, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow(names)
        for row in rows:
            writer.writerow(["" if row.get(k) is None else json.dumps(row[k]) if isinstance(row[k], list)
                             else row[k] for k in names])
            n += 1
        text.flush()
        text.detach()
    return n


def complete_row(row: dict, names: Sequence[str]) -> dict:
    return {name: row.get(name) for name in names}


def _groups(rows: Iterable[dict], size: int) -> Iterator[list[dict]]:
    group: list[dict] = []
    for row in rows:
        group.append(row)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group
