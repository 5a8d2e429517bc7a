"""Leave one language out for heads that read more than block 3's pooled embedding (#21). Exploratory:
what decided that no such input joins the recipes.

Inputs per analysis window, beside the float32 block-3 embedding every emo-whisper-f32 model reads:
- `gemaps`: openSMILE's eGeMAPSv02 functionals (88 pitch, energy, spectral and voice-quality statistics)
  of the window's audio brought to the front end's -26 dBFS;
- `blocks`: the pooled (mean + std) outputs of the encoder's stem and blocks 1-2 (`WhisperLayers`, numpy,
  float32), concatenated with block 3's: 4 × 1,024 inputs to the whisper-head;
- `b2`, `b12`, `lower`: the lower blocks without block 3: block 2 alone, blocks 1-2, the stem and
  blocks 1-2 (the layers nearer the sound than block 3, further from the words); `b23`, block 2 beside
  block 3;
- `wsum`: the same four layers read SUPERB-style: each standardised, one learned weight per layer, summed,
  then the whisper-head's hidden layer;
- the blocks above the cut, which the product reads only to guess the language: `b6`, the pooled top
  block (block 6 through the final LayerNorm, what CTranslate2's whole encoder returns) alone; `b35`,
  block 5 (raw residual stream) beside block 3; `deep`, blocks 4, 5 and 6 beside block 3 (4 × 1,024);
- `std`: block 3's spread over time alone (the pooled standard deviations, not the means): what a
  clip's frames share, voice, channel and language as much as emotion, taken out;
- `voice`: block 3 alone, as `f32`, the head also taught a copy of each training clip in a shifted
  voice (`augment.voice_shift`, `TrainParams.voice_copies`);
- `print`: block 3 beside a voice print of the window (Resemblyzer's speaker encoder, as who-spoke-when
  reads it: the mean of its unit prints of 1.2 s partials 0.65 s apart, made unit again; 256 values):
  a network trained on thousands of speakers of many languages, whose prints carry how a voice sounds
  (pitch, energy, tension) with no words in them;
- `wd`, `drop`, `drop7`: block 3 alone, the head regularised harder: weight decay 1e-2 (the recipe's
  1e-3), or dropout 0.5 on its standardised inputs and on its hidden layer (the recipe's 0.1 and 0.3;
  `model.WHISPER_HEAD_DROPOUT`), or 0.7 on its inputs and 0.5 on its hidden layer;
- `energy`: block 3 pooled with each frame weighted by its loudness (the energy of its log-mel frames)
  instead of evenly: its mean and spread over the speech more than over the quiet around it, which
  acted corpora's files hold in amounts that differ by emotion (docs/evaluation.md, the quiet cue);
  `energy-sqrt`, weighted by the square root of that energy (louder frames count less above the rest);
  `both`, the energy-weighted pooling beside block 3's even one (2 × 1,024 inputs);
- `eq`, `eq-half`: block 3 pooled evenly, read from a log-mel whose long-term spectrum is levelled
  before the encoder: each clip's (the mean of its louder half of frames) moved fully or half-way to a
  reference (the sample's, the mean over corpora of their clips'), one fixed per-band gain over the
  whole clip, as an equaliser would; microphones, rooms and each corpus's recording chain colour the
  spectrum, and a head can learn a corpus's colour with its classes;
- `ep4`, `ep8`: block 3 alone, the head trained for at most 4 or 8 epochs (its learning rate's cosine
  decay over those; the recipe's 40 stop early, on validation speakers of the languages it hears, after
  12-23): whether what it learns late fits the corpora it hears and not the languages it does not.
Each is compared with `f32` (block 3 alone, emo-whisper-f32's head) on the same clips: a seeded sample of at
most `--cap` clips per corpus (the lower blocks and eGeMAPS cost about 0.11 s per clip on one idle core,
0.3 s on the shared 2-core box: all 30,000 clips would take hours; the upper blocks are computed two
corpora at a time, about 4 min for the sample). Folds as bench/lolo.py's (`fold`, same training code,
the three readings); seeds 42 (+ the speaker protocol: validation UAR on the original five corpora, the
clips as they are and cut at their speech, `augment.cut_at_speech` seed 1, for heads whose inputs have
cut copies: `f32`, `energy`), 1, 2. `--speaker-readings` reads seed 42's saved speaker-protocol heads
again (trained only where none is saved): what rows measured before the cut reading existed lack.

    python bench/lolo_inputs.py --variants f32 gemaps blocks wsum b6 b35 deep std voice wd drop drop7 print --seeds 42 1 2
updates bench/results/lolo_inputs.json (variants and seeds not run are kept) and rewrites lolo_inputs.md.
Extra inputs are cached in ~/.cache/ser/lolo_inputs/<corpus>-cap<N>.pkl (lower blocks and eGeMAPS),
<corpus>-cap<N>-deep.pkl (upper blocks), <corpus>-cap<N>-print.pkl (voice prints), -stems.pkl (the stem
and blocks 1-2 without eGeMAPS), -<table>[-cut].pkl (block 3 read another way: `energy*`, `eq*`; the eq
reference spectrum in reference-cap<N>.npy). `gemaps` needs
opensmile==2.6.0 (as `make bench` installs for compare_models.py's baseline); nothing of it is served. These heads read no speech-cut copies, so the
folds have no cut-at-speech reading.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import pickle
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import lolo
from provenance import provenance
from ser_core.frontend.features import default_cache_dir
from ser_core.training import model as architectures
from ser_core.training import train as training
from ser_core.training.corpora import LANGUAGES, LANGUAGE_NAMES, find_clips
from ser_core.training.dataset import ClipFeatures
from ser_core.training.embeddings import embed_clips

ROOT = Path(__file__).resolve().parent.parent
OLD_CORPORA = ("ravdess", "cremad", "savee", "tess", "ased")  # the speaker protocol's validation reading
BASE_RECIPE = "emo-whisper-f32"
VARIANTS = ("f32", "gemaps", "blocks", "wsum", "b6", "b35", "deep", "std", "voice", "wd", "drop", "drop7", "print",
            "ep4", "ep8", "energy", "energy-sqrt", "both", "dann", "cdann", "eq", "eq-half", "b2", "b12", "lower",
            "b23")
# What a variant changes in the base recipe's training, beside its inputs
VARIANT_PARAMS = {"wsum": {"architecture": "whisper-wsum"}, "voice": {"voice_copies": 1}, "wd": {"weight_decay": 1e-2},
                  "drop": {"architecture": architectures.WHISPER_HEAD_DROPOUT},
                  "drop7": {"architecture": "whisper-head-drop7"},
                  "ep4": {"epochs": 4, "patience": 4}, "ep8": {"epochs": 8, "patience": 8},
                  "dann": {"corpus_adversarial": 0.3},
                  "cdann": {"corpus_adversarial": 0.3, "adversary_conditional": True}}
# The variants that read each extra table; for block 3 read another way, the table each reads
LOWER, UPPER, PRINTS = ("gemaps", "blocks", "wsum"), ("b6", "b35", "deep"), ("print",)
OWN_BLOCK3 = {"energy": "energy", "both": "energy", "energy-sqrt": "energy-sqrt", "eq": "eq", "eq-half": "eq-half"}
STEMS = ("b2", "b12", "lower", "b23")  # the lower blocks, from their own table (no eGeMAPS)
# The variants whose inputs have copies cut at speech: the speaker protocol's reading cut at speech
CUT_COPIES = ("f32", "energy", "energy-sqrt", "eq", "eq-half")
EGEMAPS_SIZE = 88


def sample(clips, cap: int) -> list:
    """At most `cap` clips per corpus, the same on every run (seeded, in clip-id order)."""
    out = []
    for corpus in sorted({c.corpus for c in clips}):
        members = sorted((c for c in clips if c.corpus == corpus), key=lambda c: c.clip_id)
        if len(members) > cap:
            members = [members[i] for i in sorted(np.random.default_rng(0).choice(len(members), cap, replace=False))]
        out += members
    return out


def lower_inputs(clips, cap: int) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """(corpus, clip id) → per window: stem + blocks 1-2 pooled (float16, 3 × 1,024), eGeMAPS (88).
    One process on one thread; each corpus cached once done."""
    from ser_core.errors import SerError
    from ser_core.frontend.encoder import content_frames, pooled_statistics, whisper_model_bytes
    from ser_core.frontend.features import compute, frame_windows, normalise_level, window_starts
    from ser_core.frontend.whisper_layers import WhisperLayers
    from ser_core.io.audio import load_audio

    threadpool_limits(1)
    features = training.RECIPES[BASE_RECIPE][0]
    cache = default_cache_dir().parent / "lolo_inputs"
    cache.mkdir(parents=True, exist_ok=True)
    smile = encoder = None
    table = {}
    for corpus in sorted({c.corpus for c in clips}):
        path = cache / f"{corpus}-cap{cap}.pkl"
        if not path.exists():
            if encoder is None:
                import opensmile  # only to compute the table: a cached one is read without it

                smile = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.Functionals)
                encoder = WhisperLayers.from_model_bytes(whisper_model_bytes())
            rows = {}
            for clip in (c for c in clips if c.corpus == corpus):
                try:
                    samples = load_audio(clip.path, features.sample_rate).samples
                except SerError:
                    continue
                starts = window_starts(len(samples), features)
                windows = frame_windows(samples, features, starts)
                levelled = normalise_level(windows, features)
                log_mel = compute(windows, features)
                lengths = content_frames(log_mel)
                blocks = [pooled_statistics(encoder(log_mel[i:i + 1, :, :lengths[i]], max_layer=2)[:, 0]).reshape(-1)
                          for i in range(len(windows))]
                heard = [levelled[i, :max(1, min(len(samples) - starts[i], features.window_samples))] for i in range(len(windows))]
                smiles = [smile.process_signal(piece, features.sample_rate).to_numpy()[0] for piece in heard]
                rows[clip.clip_id] = (np.stack(blocks).astype(np.float16), np.stack(smiles).astype(np.float32))
            path.write_bytes(pickle.dumps(rows))
        table.update({(corpus, clip_id): row for clip_id, row in pickle.loads(path.read_bytes()).items()})
    return table


def upper_reader(features):
    """Audio → per window: blocks 4, 5 and 6 pooled (float16, 3 × 1,024)."""
    from ser_core.frontend.encoder import content_frames, pooled_statistics, whisper_model_bytes
    from ser_core.frontend.features import compute, frame_windows, window_starts
    from ser_core.frontend.whisper_layers import WhisperLayers

    encoder = WhisperLayers.from_model_bytes(whisper_model_bytes())

    def read(samples: np.ndarray) -> np.ndarray:
        log_mel = compute(frame_windows(samples, features, window_starts(len(samples), features)), features)
        lengths = content_frames(log_mel)
        return np.stack([pooled_statistics(encoder(log_mel[i:i + 1, :, :lengths[i]])[4:7, 0]).reshape(-1)
                         for i in range(len(log_mel))]).astype(np.float16)
    return read


def print_reader(features):
    """Audio → per window: its voice print (float32, 256), the mean of the unit prints of 1.2 s partials
    0.65 s apart over the window's audio, made unit again."""
    from ser_core.frontend.features import frame_windows, window_starts
    from ser_core.serving.speakers import HOP, PARTIAL_FRAMES, SpeakerEncoder

    encoder, partial, step = SpeakerEncoder(), PARTIAL_FRAMES * HOP, round(0.65 * features.sample_rate)

    def read(samples: np.ndarray) -> np.ndarray:
        starts = window_starts(len(samples), features)
        prints = []
        for window, start in zip(frame_windows(samples, features, starts), starts):
            length = max(1, min(len(samples) - start, features.window_samples))
            pieces = [window[at:min(at + partial, length)] for at in range(0, max(1, length - partial + 1), step)]
            mean = encoder.embed(pieces).mean(axis=0)
            prints.append(mean / max(np.linalg.norm(mean), 1e-12))
        return np.stack(prints).astype(np.float32)
    return read


def stems_reader(features):
    """Audio → per window: the stem and blocks 1-2 pooled (float16, 3 × 1,024), the lower table's
    blocks without its eGeMAPS, two corpora at a time."""
    from ser_core.frontend.encoder import BlocksEncoder, embed
    from ser_core.frontend.features import extract

    encoder = BlocksEncoder(2)
    return lambda samples: embed(encoder, extract(samples, features)[1]).astype(np.float16)


def energy_reader(features, exponent: float = 1.0):
    """Audio → per window: block 3's frames pooled as a loudness-weighted mean and standard deviation
    (float32, 2 × 512), each frame weighted by the power of its two log-mel frames (raised to `exponent`)."""
    from ser_core.frontend.encoder import BlocksEncoder, content_frames, loudness_weights, weighted_statistics
    from ser_core.frontend.features import extract

    encoder = BlocksEncoder(3)  # block 3 through the final LayerNorm: what emo-whisper-f32 reads

    def read(samples: np.ndarray) -> np.ndarray:
        log_mel = extract(samples, features)[1]
        pooled = []
        for window, length in zip(log_mel, content_frames(log_mel)):
            frames = encoder.layers(window[None, :, :length], max_layer=3)[3]
            pooled.append(weighted_statistics(frames, loudness_weights(window[None], frames.shape[1], exponent))[0])
        return np.stack(pooled).astype(np.float32)
    return read


def louder_spectrum(log_mel: np.ndarray) -> np.ndarray:
    """Whisper log-mel windows (n, 80, frames) → the mean of the louder half of their content frames (80)."""
    from ser_core.frontend.encoder import content_frames

    frames = np.concatenate([window[:, :length] for window, length in zip(log_mel, content_frames(log_mel))], axis=1)
    loudness = frames.mean(axis=0)
    return frames[:, loudness >= np.median(loudness)].mean(axis=1)


def reference_spectrum(clips, cap: int) -> np.ndarray:
    """The `eq` variants' reference long-term spectrum: per corpus the mean of its clips' `louder_spectrum`,
    then the mean over corpora (each corpus alike); cached as reference-cap<N>.npy."""
    from ser_core.errors import SerError
    from ser_core.frontend.features import extract
    from ser_core.io.audio import load_audio

    path = default_cache_dir().parent / "lolo_inputs" / f"reference-cap{cap}.npy"
    if not path.is_file():
        features = training.RECIPES[BASE_RECIPE][0]
        per_corpus = []
        for corpus in sorted({c.corpus for c in clips}):
            spectra = []
            for clip in (c for c in clips if c.corpus == corpus):
                try:
                    spectra.append(louder_spectrum(extract(load_audio(clip.path, features.sample_rate).samples, features)[1]))
                except SerError:
                    continue
            per_corpus.append(np.mean(spectra, axis=0))
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, np.mean(per_corpus, axis=0))
    return np.load(path)


def equalised_reader(features, strength: float = 1.0, cap: int = 1000):
    """Audio → per window: block 3 pooled evenly (float32, 2 × 512) from the clip's log-mel with its
    `louder_spectrum` moved `strength` of the way to `reference_spectrum` (one gain per band, every
    content frame of every window)."""
    from ser_core.frontend.encoder import BlocksEncoder, content_frames, pooled_statistics
    from ser_core.frontend.features import extract

    encoder = BlocksEncoder(3)
    reference = np.load(default_cache_dir().parent / "lolo_inputs" / f"reference-cap{cap}.npy")

    def read(samples: np.ndarray) -> np.ndarray:
        log_mel = extract(samples, features)[1]
        gain = (strength * (reference - louder_spectrum(log_mel)))[:, None].astype(np.float32)
        return np.stack([pooled_statistics(encoder.layers(window[None, :, :length] + gain, max_layer=3)[3])[0]
                         for window, length in zip(log_mel, content_frames(log_mel))]).astype(np.float32)
    return read


# The tables computed two corpora at a time; "<table>-cut" reads each clip's copy cut at its speech
# (`augment.cut_at_speech`, seed 1, as training's speech-cut copies) instead.
READERS = {"deep": upper_reader, "print": print_reader, "stems": stems_reader, "energy": energy_reader,
           "energy-sqrt": functools.partial(energy_reader, exponent=0.5), "eq": equalised_reader,
           "eq-half": functools.partial(equalised_reader, strength=0.5)}


def corpus_table(job: tuple[str, str, list, int]) -> None:
    """One corpus's clips (or their copies cut at speech, for a "-cut" table) through one of `READERS`,
    cached as <corpus>-cap<N>-<table>.pkl; one thread."""
    from ser_core.errors import SerError
    from ser_core.io.audio import load_audio

    from ser_core.training.augment import cut_at_speech
    from ser_core.training.embeddings import clip_rng

    table, corpus, clips, cap = job
    path = default_cache_dir().parent / "lolo_inputs" / f"{corpus}-cap{cap}-{table}.pkl"
    if path.exists():
        return
    threadpool_limits(1)
    features = training.RECIPES[BASE_RECIPE][0]
    reader, cut = table.removesuffix("-cut"), table.endswith("-cut")
    read = READERS[reader](features, **({"cap": cap} if reader.startswith("eq") else {}))  # eq: the sample's reference
    rows = {}
    for clip in clips:
        try:
            samples = load_audio(clip.path, features.sample_rate).samples
        except SerError:
            continue
        rows[clip.clip_id] = read(cut_at_speech(samples, features.sample_rate, clip_rng(clip.clip_id, 1)) if cut else samples)
    path.write_bytes(pickle.dumps(rows))


def two_at_a_time(table: str, clips, cap: int) -> dict[tuple[str, str], np.ndarray]:
    """(corpus, clip id) → per window: one of `READERS`' tables, two corpora at a time."""
    from multiprocessing import Pool

    corpora = sorted({c.corpus for c in clips})
    (default_cache_dir().parent / "lolo_inputs").mkdir(parents=True, exist_ok=True)
    with Pool(2) as pool:
        pool.map(corpus_table, [(table, k, [c for c in clips if c.corpus == k], cap) for k in corpora])
    out = {}
    for corpus in corpora:
        rows = pickle.loads((default_cache_dir().parent / "lolo_inputs" / f"{corpus}-cap{cap}-{table}.pkl").read_bytes())
        out.update({(corpus, clip_id): row for clip_id, row in rows.items()})
    return out


def head_inputs(variant: str, block3: np.ndarray, lower: tuple[np.ndarray, np.ndarray] | None,
                upper: np.ndarray | None, prints: np.ndarray | None = None, energy: np.ndarray | None = None,
                stems: np.ndarray | None = None) -> np.ndarray:
    if variant == "print":
        return np.concatenate([block3, prints], axis=1)
    if variant in ("energy", "energy-sqrt", "eq", "eq-half"):
        return energy
    if variant == "both":
        return np.concatenate([block3, energy], axis=1)
    if variant in ("f32", "voice", "wd", "drop", "drop7", "ep4", "ep8", "dann", "cdann"):
        return block3
    if variant == "std":
        return block3[:, block3.shape[1] // 2:]  # pooled as mean, then standard deviation
    if variant == "gemaps":
        return np.concatenate([block3, lower[1]], axis=1)
    if variant in ("blocks", "wsum"):
        return np.concatenate([lower[0].astype(np.float32), block3], axis=1)  # stem, block 1, block 2, block 3
    if variant == "b23":
        return np.concatenate([stems.astype(np.float32)[:, 2048:], block3], axis=1)
    if variant in STEMS:  # the stems table holds the stem, block 1, block 2 (1,024 each)
        return stems.astype(np.float32)[:, {"b2": 2048, "b12": 1024, "lower": 0}[variant]:]
    upper = upper.astype(np.float32)  # blocks 4, 5, 6
    return {"b6": upper[:, 2048:], "b35": np.concatenate([block3, upper[:, 1024:2048]], axis=1),
            "deep": np.concatenate([block3, upper], axis=1)}[variant]


def build_whisper_wsum(input_shape: tuple[int, ...], n_classes: int, hidden: int = 256, dropout: float = 0.3,
                       n_layers: int = 4):
    """SUPERB's weighted sum over the encoder's layers (pooled), then the whisper-head."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="embedding")
    x = layers.Normalization(axis=-1, name="standardise")(inputs)  # per layer and dimension
    x = layers.Permute((2, 1))(layers.Reshape((n_layers, input_shape[0] // n_layers))(x))
    x = layers.Flatten()(layers.Dense(1, use_bias=False, kernel_initializer=keras.initializers.Constant(1 / n_layers),
                                      name="layer_weights")(x))
    x = layers.Dense(hidden, activation="gelu", name="hidden")(layers.Dropout(0.1)(x))
    outputs = layers.Dense(n_classes, activation="softmax", name="emotion")(layers.Dropout(dropout)(x))
    return keras.Model(inputs, outputs, name="whisper_wsum")


def use_inputs(variant: str, block3: dict, lower: dict, upper: dict, prints: dict, energy: dict, stems: dict) -> None:
    """Training and bench/lolo.py's readings take their inputs from `model_inputs`: pointed here at the
    sampled clips' tables, so that everything else (splits, head, calibration, readings) is unchanged."""

    def model_inputs(parts, params, cache_root=None, encoder_layers=None, compute_type=None, fused=False, pooling="even"):
        out = {}
        for name, part in parts.items():
            keys = [(c.corpus, c.clip_id) for c in part]
            out[name] = ClipFeatures(list(part), [head_inputs(variant, block3[k], lower.get(k), upper.get(k), prints.get(k),
                                                                       energy.get(k), stems.get(k))
                                                           for k in keys], [])
        return out

    training.model_inputs = model_inputs


def speaker_protocol(clips, name: str, variant: str, features, params, energy_cut: dict, reuse: bool = False) -> dict:
    """Trained on the speaker split of every sampled corpus (with `reuse`, its saved head read again if there is one);
    UAR on the original five's validation speakers, and for `CUT_COPIES` on those clips cut at their speech."""
    from ser_core.serving.inference import load_model
    from ser_core.training.evaluate import evaluate
    from ser_core.training.splits import assign

    out_dir = default_cache_dir().parent / "lolo_inputs" / f"{name}-speaker"
    split_file = ROOT / "models" / "splits" / "speaker.csv"
    if not (reuse and (out_dir / "metadata.json").is_file()):
        training.train(clips, split_file, "speaker", out_dir, features, params, verbose=0, recipe=name)
    model = load_model(out_dir)
    val = assign([c for c in clips if c.corpus in OLD_CORPORA], split_file)["val"]
    uar = lambda data: evaluate(model, data, "validation")[0]["balanced_accuracy"]  # noqa: E731
    readings = {"speaker_val_uar": uar(training.cached_inputs(model, val))}
    if variant == "f32":
        readings["speaker_val_cut_uar"] = uar(embed_clips(val, features, 1, layers=params.encoder_layers,
                                                          compute_type=params.encoder_compute_type, copy="speechcut"))
    elif variant in CUT_COPIES:  # a weighted pooling alone
        readings["speaker_val_cut_uar"] = uar(ClipFeatures(val, [energy_cut[(c.corpus, c.clip_id)] for c in val], []))
    return readings


def markdown(results: dict) -> str:
    pct = lambda v: "–" if v is None else f"{100 * v:.1f}"
    head = ["inputs", "seed", "reading", *(LANGUAGE_NAMES[lang] for lang in LANGUAGES), "mean", "lowest", "speaker val",
            "speaker val, cut at speech"]
    lines = [f"Leave one language out on a sample of at most {results['cap']} clips per corpus "
             f"({results['clips']} clips), UAR %; speaker val: validation UAR on the original five corpora "
             "(speaker protocol, same sample), the clips as they are and cut at their speech (a dash: not "
             "measured for those inputs):", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, r in results["rows"].items():
        variant, seed = key.split("/")
        for reading, prefix in (("one clip", ""), ("batch", "batch_")):
            cells = [pct(r["folds"][lang].get(f"{prefix}uar")) if lang in r["folds"] else "–" for lang in LANGUAGES]
            lines.append(f"| {variant} | {seed} | {reading} | " + " | ".join(cells) + f" | {pct(r[f'mean_{prefix}uar'])} | "
                         f"{pct(r[f'min_{prefix}uar'])} | {pct(r.get('speaker_val_uar')) if not prefix else ''} | "
                         f"{pct(r.get('speaker_val_cut_uar')) if not prefix else ''} |")
    lines += ["", "Averaged over seeds (one clip; batch), per language then mean and lowest of those averages:", "",
              "| inputs | seeds | reading | " + " | ".join(LANGUAGE_NAMES[lang] for lang in LANGUAGES) + " | mean | lowest |",
              "|" + "---|" * (len(LANGUAGES) + 5)]
    for variant in dict.fromkeys(key.split("/")[0] for key in results["rows"]):
        rows = [r for key, r in results["rows"].items() if key.split("/")[0] == variant]
        for reading, prefix in (("one clip", ""), ("batch", "batch_")):
            per_language = [np.mean([r["folds"][lang][f"{prefix}uar"] for r in rows]) for lang in LANGUAGES]
            lines.append(f"| {variant} | {len(rows)} | {reading} | " + " | ".join(pct(v) for v in per_language)
                         + f" | {pct(np.mean(per_language))} | {pct(min(per_language))} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=[str(ROOT.parent / "shared" / "corpora"), str(ROOT.parent / "corpora-more")])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[42])
    parser.add_argument("--cap", type=int, default=1000, help="clips per corpus")
    parser.add_argument("--speaker-readings", action="store_true",
                        help="read seed 42's saved speaker-protocol heads again (trained where none is saved); no folds")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "lolo_inputs"))
    args = parser.parse_args()
    clips = sample(list(find_clips(args.data)), args.cap)
    # Every variant on the same clips: those every table computed (a clip that fails to decode has none).
    lower = lower_inputs(clips, args.cap) if set(args.variants) & set(LOWER) else {}
    upper = two_at_a_time("deep", clips, args.cap) if set(args.variants) & set(UPPER) else {}
    prints = two_at_a_time("print", clips, args.cap) if set(args.variants) & set(PRINTS) else {}
    stems = two_at_a_time("stems", clips, args.cap) if set(args.variants) & set(STEMS) else {}
    if {"eq", "eq-half"} & set(args.variants):
        reference_spectrum(clips, args.cap)
    weighted = {table: (two_at_a_time(table, clips, args.cap), two_at_a_time(f"{table}-cut", clips, args.cap))
                for table in {OWN_BLOCK3[v] for v in args.variants if v in OWN_BLOCK3}}  # (as they are, cut at speech)
    features, base = training.RECIPES[BASE_RECIPE]
    embedded = embed_clips(clips, features, None, layers=base.encoder_layers, compute_type=base.encoder_compute_type)
    block3 = {(c.corpus, c.clip_id): f for c, f in zip(embedded.clips, embedded.features)}
    if "voice" in args.variants:  # every clip's voice copy once, before the folds each take their share
        embed_clips(clips, features, 1, layers=base.encoder_layers, compute_type=base.encoder_compute_type,
                    desc="voice copies", copy="voice")
    tables = [lower, upper, prints, stems, *(table for pair in weighted.values() for table in pair)]
    clips = [c for c in clips if (c.corpus, c.clip_id) in block3 and all((c.corpus, c.clip_id) in t for t in tables if t)]
    architectures.ARCHITECTURES["whisper-wsum"] = build_whisper_wsum
    architectures.ARCHITECTURES["whisper-head-drop7"] = functools.partial(architectures.build_whisper_head, dropout=0.5,
                                                                           inputs_dropout=0.7)
    out = Path(args.out)
    results = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").is_file() else {"rows": {}}
    results.update({"cap": args.cap, "clips": len(clips), "provenance": provenance()})
    for seed in args.seeds:
        for variant in args.variants:
            params = dataclasses.replace(base, seed=seed, **VARIANT_PARAMS.get(variant, {}))
            name = f"lolo-inputs-{variant}-s{seed}"
            training.RECIPES[name] = (features, params)
            energy, energy_cut = weighted.get(OWN_BLOCK3.get(variant), ({}, {}))
            use_inputs(variant, block3, lower, upper, prints, energy, stems)
            if args.speaker_readings:  # seed 42's saved speaker-protocol head, read again
                if seed == 42:
                    results["rows"][f"{variant}/{seed}"].update(speaker_protocol(clips, name, variant, features, params,
                                                                                 energy_cut, reuse=True))
                    out.with_suffix(".json").write_text(json.dumps(results, indent=2))
                continue
            folds = {lang: lolo.fold(clips, name, lang, reuse=False, cut=False) for lang in LANGUAGES}
            row = {**lolo.row(folds), "provenance": results["provenance"]}  # rows of earlier runs keep theirs
            if seed == 42:
                row.update(speaker_protocol(clips, name, variant, features, params, energy_cut))
            results["rows"][f"{variant}/{seed}"] = row
            out.with_suffix(".json").write_text(json.dumps(results, indent=2))
            print(variant, seed, f"{100 * row['mean_uar']:.1f} / {100 * row['min_uar']:.1f}", flush=True)
    out.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
