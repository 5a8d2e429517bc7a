"""Audio in: any common format or a numpy array → mono float32 at the model's rate (`audio`), with the
limits that keep a hostile upload cheap (size, duration, decode time), format sniffing and input
warnings (clipping, telephone band); and synthetic test signals (`signals`).

A leaf of the package: imports only `ser_core.errors` (and soundfile, soxr, PyAV)."""
