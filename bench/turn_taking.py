"""Turns that follow quickly: where a speech region is cut before voices are told apart, measured.

In conversation the next speaker often starts within a tenth of a second, inside what the detector
hears as one speech region (it ends a region only after `VadParams.min_silence_s`, 0.3 s, under
`neg_threshold`), and voices are told apart piece by piece. So each region is cut where its voice
changes (`speakers.split_at_voice_changes`): at the dips of `VadParams.turn_pause_s` under
`turn_threshold`, where the mean voice prints of the speech either side lie far enough apart. This
bench chooses those settings on validation speakers and measures the choice once on test speakers,
beside the regions themselves (how voices were told apart before). Cutting at every dip and leaving the
pieces to the clustering (tried first) split sentences among voices in a long recording of many voices.

Material, all built as bench/segments.py builds its conversations (speakers of one corpus, one clip a
turn, trimmed to its speech, room noise between turns, no overlap):
- quick conversations: 1-4 speakers (10 conversations each, 10 turns a speaker), 0.05-0.3 s between turns;
- the conversations of bench/segments.py (0.3-2 s between turns) and its short ones (3 and 5 turns a
  speaker), which the choice must not cost;
- bench/segments.py's validation recording (191 clips of many speakers, 0.8-3 s apart), read by utterance,
  and its clips one by one, each an acted sentence that must stay one segment;
- overlapping conversations of 2-4 speakers, each turn starting 0.1-0.5 s before the last one ends (the
  product does not separate voices spoken at once): the second stage's.
Rule (session 34, /work/runs/s34/rule.md M2-M3; session 33's read quick attribution first and the long
recording per clip only, and its choice split 39 of the 191 validation sentences there, costing 8.3 points per
segment): among the settings that keep the mean over the other three sets of (attribution + right number of
speakers) / 2 within a point of the regions', their per-turn UAR and the long recording's per-clip UAR within
half a point, lose no more than one sentence, and lift quick attribution (2-4 speakers) by 10 points or more
over the regions', the best mean of the quick conversations' per-turn UAR and the long recording's
per-segment UAR: the emotion of each turn and of each sentence, which the cut trades.
A second stage, on top of that choice, also cuts where the voice changes without a pause
(`speakers.SLIDE_WINDOW_S`, `SLIDE_DISTANCE`; rule M5): scored with validation overlapping conversations
(each turn starting 0.1-0.5 s before the last one ends) beside the two, allowed by the same conditions, and
taken only if it beats the first stage's choice alone by a point. It is read at the shipped step
(`speakers.SLIDE_STEP_S`, set by its cost in continuous talk: session 35's rule C1), with session 34's
quarter second beside it for comparison.

    python bench/turn_taking.py                  (nice -n 10; about 30 min on 2 cores, 11 with the next line)
    python bench/turn_taking.py --markdown-only  the markdown again from the stored json
    python bench/turn_taking.py --keep-first-stage  the first stage's grid and choice kept from the stored json
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import math
import time
from pathlib import Path

import numpy as np

import segments as S
from provenance import provenance
from ser_core.frontend.vad import DEFAULT_VAD, shared_vad
from ser_core.serving.inference import load_model
from ser_core.serving.segments import find_speech
import ser_core.serving.speakers as speakers_module
from ser_core.serving.speakers import shared_encoder
from ser_core.training.corpora import read_manifest
from ser_core.training.splits import assign

ROOT = Path(__file__).resolve().parent.parent
# Where a turn may start: one 32 ms frame under the threshold (0.9: any dip at all; 0.5: below where
# speech starts); where the voice changes there: the distance between the two sides' mean prints, the
# speech each side is read from (s) and the least each side must hold. "regions": the detector's own regions, as voices were told apart before.
THRESHOLD_GRID = (0.5, 0.9)
DISTANCE_GRID = (0.25, 0.3, 0.35, 0.4)
WINDOW_GRID = (1.0, 1.5, 2.0)
MIN_SIDE_GRID = (0.5, 0.75, 1.0)
TURN_PAUSE_S = 0.03
REGIONS = "regions"
QUICK_GAP_S = (0.05, 0.3)
QUICK_SIZES = (1, 2, 3, 4)
QUICK_PER_SIZE = 10
SHOWN = 12  # validation rows in the markdown, by score
SESSION_33 = "0.9/0.3/1.0/0.5"  # the setting chosen before the long recording's segments were read
QUICK_ATTRIBUTION_GAIN = 0.10  # what a setting must keep of the cut's purpose: attribution over the regions'
OTHERS = ("S", "short3", "short5")  # the sets a choice must not cost (attribution and right number)
SEEDS = {"val": 51, "test": 52}  # bench/segments.py uses 11-35
# Overlapping talk, measured only (the product does not separate voices spoken at once): each turn but
# the first starts this far before the last one ends, at most half the shorter turn.
OVERLAP_S = (0.1, 0.5)
OVERLAP_SIZES = (2, 3, 4)
OVERLAP_SEEDS = {"val": 54, "test": 53}
# The second stage: cuts where the voice changes without a pause (`speakers.SLIDE_WINDOW_S`, `SLIDE_DISTANCE`),
# on top of the first stage's choice; "none" is the first stage's choice alone. A sliding setting replaces it
# only for `SLIDE_MIN_GAIN` of score (rule M5, written before the scratch run that found it).
SLIDE_GRID = ("none", "1.0/0.35", "1.0/0.45", "1.0/0.55", "1.5/0.35", "1.5/0.45", "1.5/0.55")
SLIDE_MIN_GAIN = 0.01
SLIDE = "+slide "
# How often the voice is compared (`speakers.SLIDE_STEP_S`) is set by its cost on continuous talk (session 35,
# rule C1: the dearest cost of the speaker step, measured in bench/segments.py), so the grid is read at the
# shipped step; session 34's step is read beside it for comparison, never a candidate ("window/distance/step").
SESSION_34_SLIDE = "1.5/0.35/0.25"


def quick_conversations(vad, clips, split: str) -> list[dict]:
    """`S.conversation_material`, with 0.05-0.3 s of room noise between turns."""
    seed = SEEDS[split]
    material = []
    for index, turns in enumerate(S.conversations(clips, split, seed, sizes=QUICK_SIZES, per_size=QUICK_PER_SIZE)):
        samples, placed, originals = S.lay_out(turns, np.random.default_rng(seed * 1000 + index),
                                               lambda rng: S.noise(rng.uniform(*QUICK_GAP_S), rng, -60.0),
                                               lambda rng: S.noise(0.5, rng, -60.0))
        material.append({"corpus": turns[0].corpus, "audio": S.as_audio(samples), "originals": originals,
                         "truth": [(a, b, clip.emotion, clip.speaker) for a, b, clip in placed],
                         "vad": vad.probabilities(samples)})
    return material


def overlapping_conversations(vad, clips, split: str) -> list[dict]:
    """Conversations of 2-4 speakers (`QUICK_PER_SIZE` each), each turn but the first starting
    `OVERLAP_S` before the last one ends, both voices summed there, over room noise."""
    material, seed = [], OVERLAP_SEEDS[split]
    for index, turns in enumerate(S.conversations(clips, split, seed, sizes=OVERLAP_SIZES,
                                                  per_size=QUICK_PER_SIZE)):
        rng = np.random.default_rng(seed * 1000 + index)
        originals = [S.load_audio(clip.path, S.SR) for clip in turns]
        speech = [audio.samples[slice(*S.level_trim(audio.samples))] for audio in originals]
        starts, position = [], round(0.5 * S.SR)
        for i, piece in enumerate(speech):
            if i:
                ahead = min(rng.uniform(*OVERLAP_S) * S.SR, 0.5 * min(len(piece), len(speech[i - 1])))
                position = starts[-1] + len(speech[i - 1]) - round(ahead)
            starts.append(position)
        samples = S.noise((starts[-1] + len(speech[-1])) / S.SR + 0.5, rng, -60.0)
        for start, piece in zip(starts, speech):
            samples[start : start + len(piece)] += piece
        material.append({"corpus": turns[0].corpus, "audio": S.as_audio(samples), "originals": originals,
                         "truth": [(start / S.SR, (start + len(piece)) / S.SR, clip.emotion, clip.speaker)
                                   for start, piece, clip in zip(starts, speech, turns)],
                         "vad": vad.probabilities(samples)})
    return material


def measure_overlapping(model, vad, clips, variants) -> dict:
    """The overlapping conversations read as each of `variants` cuts them, and their turns as files."""
    material = overlapping_conversations(vad, clips, "test")
    with S.memoised_front_ends(model, shared_encoder()):
        out = {v: scored(model, material, v) for v in variants}
    true = [t[2] for m in material for t in m["truth"]]
    alone = [a.emotion if a.segments else "missed" for m in material for a in model.analyze_many(m["originals"])]
    return {**out, "one_by_one_uar": S.uar(true, alone), "conversations": len(material)}


def key(threshold: float, distance: float, window: float, min_side: float) -> str:
    return f"{threshold}/{distance}/{window}/{min_side}"


def shipped() -> str:
    dips = key(DEFAULT_VAD.turn_threshold, speakers_module.VOICE_CHANGE_DISTANCE, speakers_module.VOICE_CHANGE_WINDOW_S,
               speakers_module.VOICE_CHANGE_MIN_SIDE_S)
    sliding = f"{speakers_module.SLIDE_WINDOW_S}/{speakers_module.SLIDE_DISTANCE}"
    return dips if speakers_module.SLIDE_WINDOW_S == math.inf else dips + SLIDE + sliding


def is_comparison(variant: str) -> bool:
    """A second-stage row read at session 34's step: shown, never chosen."""
    return variant.endswith(SLIDE + SESSION_34_SLIDE)


@contextlib.contextmanager
def applied(variant: str):
    """The detector's settings and the voice-change settings `variant` names
    ("threshold/distance/window/min side", then "+slide window/distance[/step]" where the second stage
    cuts without pauses too, at the shipped step unless named; or the regions themselves)."""
    dips, _, sliding = variant.partition(SLIDE)
    slide_window, slide_distance, *step = (map(float, sliding.split("/")) if sliding
                                           else (math.inf, speakers_module.SLIDE_DISTANCE))  # inf: no part is long enough
    with S.Settings(SLIDE_WINDOW_S=slide_window, SLIDE_DISTANCE=slide_distance,
                    SLIDE_STEP_S=step[0] if step else speakers_module.SLIDE_STEP_S):
        if dips == REGIONS:
            yield dataclasses.replace(DEFAULT_VAD, turn_pause_s=DEFAULT_VAD.min_silence_s,
                                      turn_threshold=DEFAULT_VAD.neg_threshold)
            return
        threshold, distance, window, min_side = map(float, dips.split("/"))
        with S.Settings(VOICE_CHANGE_DISTANCE=distance, VOICE_CHANGE_WINDOW_S=window, VOICE_CHANGE_MIN_SIDE_S=min_side):
            yield dataclasses.replace(DEFAULT_VAD, turn_pause_s=TURN_PAUSE_S, turn_threshold=threshold)


def scored(model, material, variant: str) -> dict:
    """The product's pipeline (`S.read_conversations`) as `variant` says."""
    with applied(variant) as params:
        r = S.read_conversations(model, material, params, False)
    attributions = r["attribution"]
    multi = [a["accuracy"] for a in attributions if a["speakers"] > 1]
    return {"uar": r["uar"], **{k: v for k, v in r.items() if k.startswith("uar_")},
            "attribution": float(np.mean([a["accuracy"] for a in attributions])),
            "attribution_2_to_4": float(np.mean(multi)),
            "right_count": float(np.mean([a["found"] == a["speakers"] for a in attributions])),
            "by_size": S.summarise_attribution(attributions),
            "segments": r["segments"], "segments_spanning_turns": r["segments_spanning_turns"]}


def score(row: dict) -> float:
    """What the cut is for, on both kinds of recording it changes: the mean of the quick conversations'
    per-turn UAR and the long recording's per-segment UAR."""
    return (row["Q"]["uar"] + row["long_recording_uar_per_segment"]) / 2


def eligible(grid: dict[str, dict]) -> list[str]:
    """The settings the rule allows (module docstring)."""
    before = grid[REGIONS]
    return [v for v, row in grid.items()
            if row["others"] >= before["others"] - 0.01 and row["S"]["uar"] >= before["S"]["uar"] - 0.005
            and row["sentences_whole"] >= before["sentences_whole"] - 1
            and row["long_recording_uar"] >= before["long_recording_uar"] - 0.005
            and row["Q"]["attribution_2_to_4"] >= before["Q"]["attribution_2_to_4"] + QUICK_ATTRIBUTION_GAIN]


def choose(grid: dict[str, dict]) -> str:
    """The rule (module docstring): the best score among the settings allowed."""
    return max(eligible(grid), key=lambda v: round(score(grid[v]), 4))


def sliding_score(row: dict) -> float:
    """The second stage's score: the first's, with the overlapping conversations' per-turn UAR beside."""
    return (row["Q"]["uar"] + row["long_recording_uar_per_segment"] + row["O"]["uar"]) / 3


def choose_sliding(regions: dict, rows: dict[str, dict], first: str) -> str:
    """The second stage (module docstring): the best sliding setting allowed by the first stage's rule
    (against the regions), if it beats the first stage's choice alone by `SLIDE_MIN_GAIN`."""
    allowed = [v for v in eligible({REGIONS: regions, **rows}) if v not in (REGIONS, first) and not is_comparison(v)]
    best = max(allowed, key=lambda v: round(sliding_score(rows[v]), 4), default=first)
    return best if sliding_score(rows[best]) >= sliding_score(rows[first]) + SLIDE_MIN_GAIN else first


def validation_row(model, material: dict, variant: str, long: tuple, sentences) -> dict:
    """One setting on the validation sets: each conversation set scored, the others' mean of
    (attribution + right number) / 2, the sentences kept whole, the long recording per clip and segment."""
    row = {name: scored(model, m, variant) for name, m in material.items()}
    row["others"] = float(np.mean([(row[k]["attribution"] + row[k]["right_count"]) / 2 for k in OTHERS]))
    with applied(variant) as params:
        row["sentences_whole"] = sum(len(x) == 1 for x in find_speech(sentences, params))
        recording = S.by_utterance(model, *long, params)
    row["long_recording_uar"], row["long_recording_uar_per_segment"] = recording["uar_per_clip"], recording["uar_per_segment"]
    row["long_recording_clips_split"] = recording["split_clips"]
    print(variant, {k: (v["uar"], v["attribution_2_to_4"]) if isinstance(v, dict) else v for k, v in row.items()}, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "corpora" / "manifest.csv"))
    parser.add_argument("--model", default=str(ROOT / "models" / "default"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "turn_taking"))
    parser.add_argument("--markdown-only", action="store_true", help="write the markdown from the stored json")
    parser.add_argument("--keep-first-stage", action="store_true",
                        help="keep the first stage's grid and choice (the dips) from the stored results")
    args = parser.parse_args()
    out = Path(args.out)
    stored = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").is_file() else None
    if args.markdown_only:
        out.with_suffix(".md").write_text(markdown(stored))
        return
    started = time.time()
    model = load_model(args.model)
    vad = shared_vad()
    parts = assign(read_manifest(args.data), ROOT / model.metadata["split_file"])
    variants = [REGIONS, *(key(*v) for v in itertools.product(THRESHOLD_GRID, DISTANCE_GRID, WINDOW_GRID, MIN_SIDE_GRID)
                           if v[3] <= v[2])]

    val = {"Q": quick_conversations(vad, parts["val"], "val"),
           "S": S.conversation_material(vad, parts["val"], "val", 11),
           **{f"short{t}": S.conversation_material(vad, parts["val"], "val", 20 + t, sizes=S.SHORT_SIZES,
                                                   per_size=S.SHORT_PER_SIZE, turns_per_speaker=t)
              for t in S.SHORT_TURNS}}
    # bench/segments.py's validation recording: its clips are the sentences that must stay whole
    long_samples, long_truth, sentences = S.build_recording(S.pick_clips(parts["val"], np.random.default_rng(1)), seed=1)
    long = (S.as_audio(long_samples), vad.probabilities(long_samples), long_truth)
    with S.memoised_front_ends(model, shared_encoder()):
        if args.keep_first_stage and stored is not None:
            grid, first = stored["validation"]["grid"], stored["validation"].get("first_stage", stored["chosen"])
        else:
            grid = {variant: validation_row(model, val, variant, long, sentences) for variant in variants}
            first = choose(grid)
        # The second stage, on top of the first's choice, with overlapping conversations in the score.
        val["O"] = overlapping_conversations(vad, parts["val"], "val")
        sliding = {variant: validation_row(model, val, variant, long, sentences)
                   for variant in (first if s == "none" else f"{first}{SLIDE}{s}" for s in (*SLIDE_GRID, SESSION_34_SLIDE))}
        chosen = choose_sliding(grid[REGIONS], sliding, first)

        test = {"Q": quick_conversations(vad, parts["test"], "test"),
                "S": S.conversation_material(vad, parts["test"], "test", 12)}
        compared = tuple(dict.fromkeys((chosen, first, REGIONS, SESSION_33)))
        measured = {name: {v: scored(model, material, v) for v in compared} for name, material in test.items()}
    for name, material in test.items():
        true = [t[2] for m in material for t in m["truth"]]
        alone = [a.emotion if a.segments else "missed" for m in material for a in model.analyze_many(m["originals"])]
        measured[name]["one_by_one_uar"] = S.uar(true, alone)
    overlapping = measure_overlapping(model, vad, parts["test"], list(dict.fromkeys((REGIONS, first, chosen))))
    results = {"provenance": provenance(args.model), "model": model.metadata.get("name"),
               "validation": {"grid": grid, "first_stage": first, "sliding": sliding, "sentences": len(sentences),
                              "first_stage_kept": bool(args.keep_first_stage and stored is not None),
                              "conversations": {k: len(v) for k, v in val.items()}},
               "chosen": chosen, "regions": REGIONS, "turn_pause_s": TURN_PAUSE_S,
               "slide_step_s": speakers_module.SLIDE_STEP_S,
               "test": measured, "test_conversations": {k: len(v) for k, v in test.items()},
               "overlapping": overlapping,
               "minutes": (time.time() - started) / 60}
    out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def markdown(r: dict) -> str:
    """The results as bench/results/turn_taking.md; whether the shipped defaults are the choice is read
    from the code as it stands."""
    before, chosen = r["regions"], r["chosen"]
    first = r["validation"].get("first_stage", chosen)
    name = lambda v: ("the regions themselves (before)" if v == before  # noqa: E731
                      else f"{v} (session 33)" if v == SESSION_33 and v != chosen else v)
    lines = ["# Turns that follow quickly (`python bench/turn_taking.py`)", "",
             f"Model `{r['model']}`; conversations built as in bench/segments.py: speakers of one corpus, one clip a "
             f"turn, no overlap. Quick conversations: {QUICK_PER_SIZE} each of {', '.join(map(str, QUICK_SIZES))} "
             f"speakers, {QUICK_GAP_S[0]}-{QUICK_GAP_S[1]} s of room noise between turns. Each speech region is cut "
             f"where its voice changes: at dips of {r['turn_pause_s']} s under the detector's `turn_threshold`, where "
             "the mean voice prints of up to `VOICE_CHANGE_WINDOW_S` of speech either side lie "
             "`VOICE_CHANGE_DISTANCE` or more apart, each side holding `VOICE_CHANGE_MIN_SIDE_S` of speech at least "
             "(written threshold/distance/window/min side); before, voices were told "
             f"apart on the detector's regions ({DEFAULT_VAD.min_silence_s} s under {DEFAULT_VAD.neg_threshold}).",
             "", "## Test speakers, measured once", "",
             "| conversations | regions cut at | per-turn UAR % | the same clips one by one, as files | "
             "attribution, 2-4 speakers | right number found | segments touching 2+ turns |",
             "|---|---|---|---|---|---|---|"]
    titles = {"Q": "quick (0.05-0.3 s between turns)", "S": "bench/segments.py's (0.3-2 s)"}
    for part, title in titles.items():
        m = r["test"][part]
        for variant in dict.fromkeys((before, SESSION_33, first, chosen)):
            if variant not in m:  # results from before session 34 measured the regions and the choice only
                continue
            row = m[variant]
            lines.append(f"| {title} | {name(variant)} | {pct(row['uar'])} | {pct(m['one_by_one_uar'])} | "
                         f"{pct(row['attribution_2_to_4'])} | {pct(row['right_count'])} | "
                         f"{row['segments_spanning_turns']} of {row['segments']} |")
    q = r["test"]["Q"]
    lines += ["", "Attribution by number of speakers (test, quick conversations), before → now: " + "; ".join(
        f"{size}: {pct(q[before]['by_size'][size]['accuracy'])} → {pct(q[chosen]['by_size'][size]['accuracy'])}"
        for size in q[chosen]["by_size"]) + ".",
        ""]
    if "overlapping" in r:  # results from before session 34 have none
        o = r["overlapping"]
        lines += ["## Overlapping talk, test speakers, measured once", "",
                  f"{o['conversations']} conversations of {', '.join(map(str, OVERLAP_SIZES))} test speakers built as the "
                  f"quick ones, each turn but the first starting {OVERLAP_S[0]}-{OVERLAP_S[1]} s before the last one "
                  "ends (both voices at once there, at most half the shorter turn; the second stage read validation ones). "
                  "The product does not separate voices spoken at once: it finds where the next voice takes over, and "
                  "the stretch both speak goes to one of them.", "",
                  "| regions cut at | per-turn UAR % | the same clips one by one, as files | attribution, 2-4 speakers | "
                  "right number found | segments touching 2+ turns |", "|---|---|---|---|---|---|"]
        for variant in (v for v in dict.fromkeys((before, first, chosen)) if v in o):
            row = o[variant]
            lines.append(f"| {name(variant)} | {pct(row['uar'])} | {pct(o['one_by_one_uar'])} | "
                         f"{pct(row['attribution_2_to_4'])} | {pct(row['right_count'])} | "
                         f"{row['segments_spanning_turns']} of {row['segments']} |")
        lines.append("")
    lines += ["## Chosen on validation speakers", "",
        "| regions cut at | quick: per-turn UAR % | quick: attribution, 2-4 speakers | quick: right number | "
        "others: (attribution + right number) / 2 | others: per-turn UAR (10 turns a speaker) | "
        "long recording: per-clip UAR | long recording: per-segment UAR | long recording: clips split | "
        "sentences kept whole | score |",
        "|---|---|---|---|---|---|---|---|---|---|---|"]
    grid = r["validation"]["grid"]
    allowed = eligible(grid)
    best = sorted((v for v in grid if v != before), key=lambda v: -score(grid[v]))[:SHOWN]
    for variant in [before, *best, *(v for v in (SESSION_33,) if v in grid and v not in best)]:
        row = grid[variant]
        mark = " (chosen)" if variant == first else "" if variant in allowed or variant == before else " (not allowed)"
        lines.append(f"| {name(variant)}{mark} | {pct(row['Q']['uar'])} | "
                     f"{pct(row['Q']['attribution_2_to_4'])} | {pct(row['Q']['right_count'])} | {pct(row['others'])} | "
                     f"{pct(row['S']['uar'])} | {pct(row['long_recording_uar'])} | "
                     f"{pct(row['long_recording_uar_per_segment'])} | {row['long_recording_clips_split']} | "
                     f"{row['sentences_whole']} of {r['validation']['sentences']} | {pct(score(row))} |")
    lines += ["", f"The regions, the {SHOWN} best scores of {len(grid) - 1} settings measured (all in "
              f"bench/results/turn_taking.json) and session 33's choice ({SESSION_33}). Others: bench/segments.py's validation conversations (10 turns a speaker) and its short ones "
              "(3 and 5); the long recording: its validation recording (many voices, a sentence each, 0.8-3 s "
              "apart). Rule: among the settings that keep the others within a point of the regions', their per-turn "
              "UAR and the long recording's per clip within half a point, lose no more than one sentence and lift quick "
              f"attribution by {100 * QUICK_ATTRIBUTION_GAIN:.0f} points or more over the regions', the best score: the mean "
              "of the quick per-turn UAR and the long recording's per-segment UAR (the emotion of each turn and of each "
              "sentence, which the cut trades). "
              f"Chosen: {first}{' (kept from an earlier run)' if r['validation'].get('first_stage_kept') else ''}.", ""]
    if "sliding" in r["validation"]:
        rows = r["validation"]["sliding"]
        allowed = eligible({before: grid[before], **rows})
        lines += ["### Second stage: cuts without a pause", "",
                  "| setting | quick: per-turn UAR % | quick: attribution, 2-4 speakers | overlapping: per-turn UAR | "
                  "overlapping: attribution, 2-4 speakers | overlapping: right number | others | others: per-turn UAR | "
                  "long recording: per clip | long recording: per segment | sentences kept whole | score |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for variant, row in rows.items():
            mark = (" (chosen)" if variant == chosen else " (session 34's step, for comparison)" if is_comparison(variant)
                    else "" if variant in allowed or variant == first else " (not allowed)")
            setting = variant.partition(SLIDE)[2]
            lines.append(f"| {'no cut without a pause' if variant == first else setting + (' (window s / distance / step s)' if is_comparison(variant) else ' (window s / distance)')}"
                         f"{mark} | {pct(row['Q']['uar'])} | {pct(row['Q']['attribution_2_to_4'])} | {pct(row['O']['uar'])} | "
                         f"{pct(row['O']['attribution_2_to_4'])} | {pct(row['O']['right_count'])} | {pct(row['others'])} | "
                         f"{pct(row['S']['uar'])} | {pct(row['long_recording_uar'])} | "
                         f"{pct(row['long_recording_uar_per_segment'])} | {row['sentences_whole']} of {r['validation']['sentences']} | "
                         f"{pct(sliding_score(row))} |")
        lines += ["", "Score: the mean of the quick and the overlapping conversations' per-turn UAR and the long "
                  "recording's per-segment UAR; allowed by the first stage's conditions; a setting replaces the first "
                  f"stage's choice alone only for {100 * SLIDE_MIN_GAIN:.0f} point of score or more."
                  + (f" The voice is compared every {r['slide_step_s']} s (`SLIDE_STEP_S`, set by its cost on continuous "
                     "talk: bench/segments.py); session 34's step is read beside for comparison." if "slide_step_s" in r else ""),
                  ""]
    lines += [f"Shipped defaults ({shipped()}) match the choice ({chosen}): {shipped() == chosen}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
