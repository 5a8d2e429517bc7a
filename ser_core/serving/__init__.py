"""A prediction: a model directory loaded once (`inference`: `load_model`, `SerModel`), what it returns
(`results`: `Analysis`, `Segment`), recordings by utterance (`segments`) and by speaker (`speakers`),
voice profiles (`profile`), calibration (`calibration`), live audio (`live`), the analyses the
app and the HTTP API share (`pool`, with the thread policy in `threads`), many files in parallel
(`batch`, the one local engine), the shipped models (`shipped`) and the HTTP API (`http`).

What `ser predict`, `ser serve` and the app run, on LiteRT and CTranslate2 without TensorFlow:
imports `ser_core.io`, `ser_core.frontend`, `ser_core.errors` and `ser_core.labels`, never
training, distributed, ui or the CLI (Keras only inside `inference`'s fallback for a model
without model.tflite)."""
