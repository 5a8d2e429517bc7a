"""Conversations in a language the model never heard: per-turn UAR with and without each speaker read
against their own voice (#22's automatic adaptation, on the speakers it matters for: #21's unheard
languages).

For each language of leave one language out, the default's recipe trained without any corpus of it
(`bench/lolo.py`'s fold model of `emo-whisper-ens-diverse`), the utterances read by the same fold of
its utterance reader's recipe (`emo-whisper-ens-diverse-plus-cut`), and the fold of its reference
head's recipe (`emo-whisper-f32-adapt`) mixed in at the shipped default's weight wherever the product
mixes it, as the product reads a recording.
Conversations are built by bench/segments.py's builder from the language's speakers (known speakers
only; one corpus per conversation, `TURNS_PER_SPEAKER` turns each, 0.3-2 s of room noise between
turns): `CONVERSATIONS_PER_SIZE` with one speaker and as many with two. Everything else is the
shipped pipeline and settings (`analyze_many` by utterance, voices found by clustering), read
without adaptation, with each speaker against their own voice (`SpeakerOptions(adapt=True)`), and with
the whole recording against itself (`SpeakerOptions(recording=True)`, `ser predict --adapt recording`). Per-turn UAR over the language's own labels
(`training.metrics.label_uar`: BAVED's arousal sets right on any member).

The rule, written before the first run: adaptation would go on by default if the mean gain over the
languages were at least 4 points and no single-speaker conversation (these, and bench/segments.py's
validation ones) lost more than 1 point. No test conversation of bench/segments.py is read. The whole
recording's reading was added later (session 25) under the same rule, its settings the batch reading's
(`RECORDING_MIN_SPEECH_S`), after scratch runs on these conversations compared three settings without
the reference head and then its share (none, the default's 0.3, all): the batch reading's own share,
0.3, gained most. Only that reading mixes the reference head in (the plain reading and each voice
against itself do not), so the other columns are as they were without it.

    python bench/lolo_conversations.py        # needs bench/lolo.py's fold models of both recipes
writes bench/results/lolo_conversations.{json,md}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import segments as recordings
from provenance import provenance
from report import write_results
from ser_core.frontend.features import default_cache_dir
from ser_core.frontend.vad import DEFAULT_VAD, shared_vad
from ser_core.serving.inference import METADATA_FILE, REFERENCE_FIELD, load_model
from ser_core.serving.segments import RECORDING_MIN_SPEECH_S, SpeakerOptions
from ser_core.serving.shipped import resolve_model
from ser_core.serving.speakers import shared_encoder
from ser_core.training.corpora import LANGUAGE_NAMES, LANGUAGES, UNKNOWN_SPEAKER, find_clips
from ser_core.training.metrics import label_uar

ROOT = Path(__file__).resolve().parent.parent
MODEL_RECIPE = "emo-whisper-ens-diverse"  # the default's recipe
READER_RECIPE = "emo-whisper-ens-diverse-plus-cut"  # its utterance reader's
REFERENCE_RECIPE = "emo-whisper-f32-adapt"  # its reference head's (inference.REFERENCE_FIELD)
SPEAKERS = (1, 2)
CONVERSATIONS_PER_SIZE = 6
TURNS_PER_SPEAKER = 16  # acted sentences of 2-3 s: a voice past the 20 s adaptation needs
SEED = 21
ADAPTED = "read against their own voice"  # what an analysis's adaptation note says of an adapted speaker
WHOLE = "Read against this recording's own speech"  # and of a recording read against itself


def conversations(clips: list, language: str) -> list[dict]:
    """The language's conversations, built and their detector probabilities computed once."""
    return recordings.conversation_material(shared_vad(), clips, language, SEED, sizes=SPEAKERS,
                                            per_size=CONVERSATIONS_PER_SIZE, turns_per_speaker=TURNS_PER_SPEAKER)


def read(model, material: list[dict], adapt: bool, recording: bool = False) -> dict:
    """Per-turn UAR over all the conversations, per single-speaker conversation, how many voices were
    read against themselves, and who spoke when (bench/segments.py's attribution, per conversation)."""
    analyses = model.analyze_many([m["audio"] for m in material], vad=DEFAULT_VAD,
                                  speakers=SpeakerOptions(adapt=adapt, recording=recording))
    true, predicted, single, attributions = [], [], [], []
    for m, analysis in zip(material, analyses):
        labels = recordings.per_turn_labels(analysis, m["truth"])
        turns = [t[2] for t in m["truth"]]
        true += turns
        predicted += labels
        if len({t[3] for t in m["truth"]}) == 1:
            single.append(label_uar(turns, labels))
        attributions.append(recordings.attribution([(s.start_s, s.end_s) for s in analysis.segments],
                                                   [s.speaker for s in analysis.segments], m["truth"]))
    return {"uar": label_uar(true, predicted), "single_speaker_uars": single, "turns": len(true),
            "voices_adapted": sum(a.adaptation.count(ADAPTED) for a in analyses),
            "recordings_adapted": sum(a.adaptation.startswith(WHOLE) for a in analyses), "attribution": attributions}


def shipped_reference_weight() -> float:
    """The weight the shipped default gives its reference head (its metadata's `REFERENCE_FIELD`)."""
    metadata = json.loads((resolve_model("default") / METADATA_FILE).read_text())
    return float(metadata[REFERENCE_FIELD]["weight"])


def language_row(clips: list, language: str) -> dict:
    folds = default_cache_dir().parent / "lolo"
    model = load_model(folds / f"{MODEL_RECIPE}-{language}")
    # As the shipped default: its reference head at its weight, shared by its utterance reader.
    model.reference = (load_model(folds / f"{REFERENCE_RECIPE}-{language}"), shipped_reference_weight())
    model.utterance_reader = load_model(folds / f"{READER_RECIPE}-{language}")
    model.utterance_reader.reference = model.reference
    material = conversations([c for c in clips if c.corpus in LANGUAGES[language]], language)
    with recordings.memoised_front_ends(model, shared_encoder()):  # the second reading reuses the first's encoders
        plain, adapted = read(model, material, False), read(model, material, True)
        whole = read(model, material, False, recording=True)
    who = plain["attribution"]
    return {"conversations": len(material), "voices": sum(len({t[3] for t in m["truth"]}) for m in material),
            "attribution_two_speakers": float(np.mean([a["accuracy"] for a in who if a["speakers"] == 2])),
            "right_count": float(np.mean([a["found"] == a["speakers"] for a in who])),
            "plain": plain, "adapted": adapted, "gain": adapted["uar"] - plain["uar"],
            "worst_single_speaker_change": worst_change(plain, adapted),
            "whole_recording": whole, "whole_recording_gain": whole["uar"] - plain["uar"],
            "whole_recording_worst_single_speaker_change": worst_change(plain, whole)}


def worst_change(plain: dict, adapted: dict) -> float:
    return min(b - a for a, b in zip(plain["single_speaker_uars"], adapted["single_speaker_uars"]))


def markdown(results: dict) -> str:
    pct = lambda v: f"{100 * v:.1f}"  # noqa: E731
    rows = results["languages"]
    lines = ["**Conversations in a language never heard (`python bench/lolo_conversations.py`)**", "",
             f"Per language, the default's recipe and its utterance reader's trained without it (leave one language "
             f"out); {CONVERSATIONS_PER_SIZE} conversations of one speaker and {CONVERSATIONS_PER_SIZE} of two, "
             f"{TURNS_PER_SPEAKER} turns per speaker, the shipped pipeline. Per-turn UAR %, without and with each "
             "speaker read against their own voice in the recording:", "",
             "| language | turns | voices | voices adapted | plain | each voice against itself | change | "
             "worst single-speaker change | the whole recording against itself | change | worst single-speaker "
             "change | attribution, 2 speakers | right number found |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for language, r in rows.items():
        lines.append(f"| {LANGUAGE_NAMES[language]} | {r['plain']['turns']} | {r['voices']} | "
                     f"{r['adapted']['voices_adapted']} | {pct(r['plain']['uar'])} | {pct(r['adapted']['uar'])} | "
                     f"{100 * r['gain']:+.1f} | {100 * r['worst_single_speaker_change']:+.1f} | "
                     f"{pct(r['whole_recording']['uar'])} | {100 * r['whole_recording_gain']:+.1f} | "
                     f"{100 * r['whole_recording_worst_single_speaker_change']:+.1f} | "
                     f"{pct(r['attribution_two_speakers'])} | {pct(r['right_count'])} |")
    mean = lambda key: float(np.mean([r[key]["uar"] for r in rows.values()]))  # noqa: E731
    average = lambda key: float(np.mean([r[key] for r in rows.values()]))  # noqa: E731
    lines += [f"| mean | | | | {pct(mean('plain'))} | {pct(mean('adapted'))} | "
              f"{100 * results['mean_gain']:+.1f} | {100 * results['worst_single_speaker_change']:+.1f} | "
              f"{pct(mean('whole_recording'))} | {100 * results['whole_recording_mean_gain']:+.1f} | "
              f"{100 * results['whole_recording_worst_single_speaker_change']:+.1f} | "
              f"{pct(average('attribution_two_speakers'))} | {pct(average('right_count'))} |", "",
              "Who spoke when, read without adaptation: attribution is the share of turns given to the right speaker "
              "under the best mapping (two-speaker conversations), and the right number of speakers is found "
              "without being told, over all the language's conversations.", "",
              f"Adaptation on by default by the rule written before the run (a mean gain of at least 4 points, no "
              f"single-speaker conversation more than 1 point worse): {results['on_by_default']}; the whole "
              f"recording against itself by the same rule: {results['whole_recording_on_by_default']}. A voice is "
              "read against itself only from 20 s of its speech, which single words (Turkish, Hindi/English, "
              "Arabic) reach in few conversations; a recording is read against itself from "
              f"{RECORDING_MIN_SPEECH_S:g} s of speech, all its voices together.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=[str(ROOT.parent / "shared" / "corpora"), str(ROOT.parent / "corpora-more")])
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "lolo_conversations"))
    args = parser.parse_args()
    clips = [c for c in find_clips(args.data) if c.speaker != UNKNOWN_SPEAKER]
    rows = {}
    for language in LANGUAGES:
        rows[language] = language_row(clips, language)
        print(language, json.dumps({k: rows[language][k] for k in ("gain", "worst_single_speaker_change", "whole_recording_gain",
                                                                   "whole_recording_worst_single_speaker_change")}), flush=True)
    gain = float(np.mean([r["gain"] for r in rows.values()]))
    worst = min(r["worst_single_speaker_change"] for r in rows.values())
    whole_gain = float(np.mean([r["whole_recording_gain"] for r in rows.values()]))
    whole_worst = min(r["whole_recording_worst_single_speaker_change"] for r in rows.values())
    results = {"provenance": provenance(), "model_recipe": MODEL_RECIPE, "reader_recipe": READER_RECIPE,
               "turns_per_speaker": TURNS_PER_SPEAKER, "conversations_per_size": CONVERSATIONS_PER_SIZE, "seed": SEED,
               "languages": rows, "mean_gain": gain, "worst_single_speaker_change": worst,
               "on_by_default": bool(gain >= 0.04 and worst >= -0.01),
               "whole_recording_mean_gain": whole_gain, "whole_recording_worst_single_speaker_change": whole_worst,
               "whole_recording_on_by_default": bool(whole_gain >= 0.04 and whole_worst >= -0.01)}
    out = Path(args.out)
    write_results(out, results, markdown(results))


if __name__ == "__main__":
    main()
