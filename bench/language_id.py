"""Which language it sounds like (`ser_core.frontend.language`): how often the guess is right, and how
often it would warn wrongly that the model never heard the language.

Two sets. The corpora (all heard in training by the default): per corpus a seeded sample of clips,
each read as the product reads it (the voice activity detector's speech, at most 30 s): the share
given a guess at all (enough speech), the share of those whose top language is the corpus's, and the
share warned as a language never heard (every such warning here is wrong). And synthetic sentences
(espeak-ng, one neutral sentence per language, several voices and speeds): languages the model never
heard (which should be warned about) and some it heard. Synthetic speech is not a person's; it shows
whether the guess names a language at all, not how well it does on real speakers of it. The cost
is the median time of one guess on one thread, model loaded.

    python bench/language_id.py [--per-corpus 40]    writes bench/results/language_id.json and .md
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from provenance import provenance
from report import write_results
from ser_core.frontend.language import (CODES_OF_CORPUS, LANGUAGE_NAMES as WHISPER_NAMES, MIN_SPEECH_S, SURE_ABOVE,
                                        LanguageIdentifier, guess_language, heard_codes, speech_of)
from ser_core.frontend.vad import find_regions
from ser_core.io.audio import load_audio
from ser_core.serving.inference import load_model
from ser_core.training.corpora import CORPUS_NAMES, LANGUAGE_NAMES, LANGUAGES, find_clips

ROOT = Path(__file__).resolve().parent.parent

# One plain sentence per language ("The train leaves at seven and we will be home before dinner."),
# espeak-ng's voice name for each.
SENTENCES = {
    "de": "Der Zug fährt um sieben Uhr ab, und wir sind vor dem Abendessen zu Hause.",
    "it": "Il treno parte alle sette e saremo a casa prima di cena.",
    "es": "El tren sale a las siete y estaremos en casa antes de la cena.",
    "fr": "Le train part à sept heures et nous serons à la maison avant le dîner.",
    "pt": "O comboio parte às sete e estaremos em casa antes do jantar.",
    "nl": "De trein vertrekt om zeven uur en we zijn voor het avondeten thuis.",
    "ru": "Поезд отправляется в семь, и мы будем дома до ужина.",
    "en": "The train leaves at seven and we will be home before dinner.",
    "pl": "Pociąg odjeżdża o siódmej i będziemy w domu przed kolacją.",
    "tr": "Tren yedide kalkıyor ve akşam yemeğinden önce evde olacağız.",
}
VOICES = ("", "+m3", "+f2")  # espeak-ng variants: default, a male and a female voice
SPEEDS = (140, 175)  # words per minute


def synthesise(code: str, variant: str, speed: int):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "s.wav"
        subprocess.run(["espeak-ng", "-v", code + variant, "-s", str(speed), "-w", str(path), SENTENCES[code]],
                       check=True, capture_output=True)
        return load_audio(path, 16000)


def read(identifier, audio, heard: frozenset[str]) -> tuple:
    """(the guess for a decoded recording, as the product makes it; the seconds the guess took)."""
    speech = speech_of(audio.samples, find_regions([audio])[0])
    start = time.perf_counter()
    guess = guess_language(speech, heard, identifier)
    return guess, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=[str(ROOT.parent / "shared" / "corpora"), str(ROOT.parent / "corpora-more")])
    parser.add_argument("--per-corpus", type=int, default=40)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "language_id"))
    args = parser.parse_args()
    heard = heard_codes(load_model("default").metadata)
    identifier = LanguageIdentifier(threads=1)
    rng = np.random.default_rng(0)
    clips = list(find_clips([d for d in args.data if Path(d).is_dir()]))
    times, corpora = [], {}
    for language, members in LANGUAGES.items():
        for corpus in members:
            pool = [c for c in clips if c.corpus == corpus]
            if not pool:
                continue
            sample = [pool[i] for i in rng.choice(len(pool), min(args.per_corpus, len(pool)), replace=False)]
            guesses = []
            for clip in sample:
                guess, seconds = read(identifier, load_audio(clip.path, 16000), heard)
                guesses.append(guess)
                if guess.code:
                    times.append(seconds)
            own = CODES_OF_CORPUS[corpus]
            named = [g for g in guesses if g.code]
            corpora[corpus] = {"language": LANGUAGE_NAMES[language], "clips": len(guesses),
                               "guessed": len(named) / len(guesses),
                               "right": float(np.mean([g.code in own for g in named])) if named else None,
                               "warned_unheard": float(np.mean([g.unheard for g in guesses])),
                               "speech_s_median": float(np.median([g.speech_s for g in guesses]))}
            print(corpus, corpora[corpus], flush=True)
    synthetic = {}
    if shutil.which("espeak-ng"):
        for code in SENTENCES:
            guesses = [read(identifier, synthesise(code, v, s), heard)[0] for v in VOICES for s in SPEEDS]
            synthetic[code] = {"heard_in_training": code in heard, "readings": len(guesses),
                               "right": float(np.mean([g.code == code for g in guesses])),
                               "warned_unheard": float(np.mean([g.unheard for g in guesses])),
                               "named": sorted({g.code for g in guesses})}
            print(code, synthetic[code], flush=True)
    results = {"provenance": provenance(), "min_speech_s": MIN_SPEECH_S, "sure_above": SURE_ABOVE,
               "heard": sorted(heard), "corpora": corpora, "synthetic": synthetic,
               "guess_ms_median": 1000 * float(np.median(times)) if times else None}
    write_results(Path(args.out), results, markdown(results))


def markdown(r: dict) -> str:
    pct = lambda v: "–" if v is None else f"{100 * v:.1f}"
    lines = ["# Which language it sounds like (`python bench/language_id.py`)", "",
             f"Whisper-base's language identification on the speech the detector finds (at most 30 s; no guess under "
             f"{r['min_speech_s']:g} s of speech; a language named when its probability reaches {r['sure_above']:g}). "
             f"The model heard {', '.join(WHISPER_NAMES[code] for code in r['heard'])}. One guess: {r['guess_ms_median']:.0f} ms median, one thread.", "",
             "| corpus | language | clips | guessed (enough speech) % | right, of those guessed % | warned as never heard (wrongly) % |",
             "|---|---|---|---|---|---|"]
    for corpus, c in r["corpora"].items():
        lines.append(f"| {CORPUS_NAMES[corpus]} | {c['language']} | {c['clips']} | {pct(c['guessed'])} | {pct(c['right'])} | "
                     f"{pct(c['warned_unheard'])} |")
    if r["synthetic"]:
        lines += ["", "Synthetic sentences (espeak-ng, 3 voices × 2 speeds each; not a person's speech):", "",
                  "| language | heard in training | right % | warned as never heard % | named |", "|---|---|---|---|---|"]
        for code, s in r["synthetic"].items():
            lines.append(f"| {code} | {'yes' if s['heard_in_training'] else 'no'} | {pct(s['right'])} | "
                         f"{pct(s['warned_unheard'])} | {', '.join(s['named'])} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
