"""From samples to what a model reads: analysis windows and their features (`features`: MFCC, log-mel,
Whisper log-mel), the pretrained Whisper-base encoder blocks (`encoder`, run by CTranslate2;
`whisper_layers`, the same blocks in numpy), voice activity detection (`vad`, Silero in numpy) and
pitch (`pitch`, YIN in numpy).

Shared by serving and training; imports only `ser_core.io`, `ser_core.errors` and
`ser_core.labels`, never serving, training, distributed, ui or the CLI, nor TensorFlow."""
