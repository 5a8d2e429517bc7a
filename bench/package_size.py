"""What `pip install ser` puts on disk: build the wheel, install it into an empty venv (the base
install, no extras: what `ser predict` and the Python API need), and measure the venv's
site-packages, package by package. Results: bench/results/package_size.{json,md}.

    python bench/package_size.py
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance  # noqa: E402
from report import write_results

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
MB = 1024 * 1024


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def distribution_bytes(site: Path) -> dict[str, int]:
    """Bytes per installed distribution, from each one's RECORD (files it installed)."""
    sizes = {}
    for record in site.glob("*.dist-info/RECORD"):
        name = record.parent.name.split("-")[0].lower().replace("_", "-")
        total = 0
        for line in record.read_text().splitlines():
            path = site / line.split(",")[0]
            if path.is_file():
                total += path.stat().st_size
        sizes[name] = total
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1]))


def measure(work: Path) -> dict:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w",
                    str(work / "dist"), str(ROOT)], check=True)
    wheel = next((work / "dist").glob("ser-*.whl"))
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet",
                    str(wheel)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    return {"wheel_mb": round(wheel.stat().st_size / MB, 1), "installed_mb": round(folder_bytes(venv) / MB, 1),
            "site_packages_mb": round(folder_bytes(site) / MB, 1),
            "distributions_mb": {k: round(v / MB, 1) for k, v in distribution_bytes(site).items()}}


def markdown(report: dict) -> str:
    rows = "\n".join(f"| {name} | {mb} |" for name, mb in report["distributions_mb"].items() if mb >= 0.5)
    return (f"# What the base install puts on disk\n\n"
            f"`pip install` of the wheel (no extras) into an empty venv, commit {report['provenance']['commit'][:7]}: "
            f"**{report['installed_mb']} MB** installed (the wheel itself {report['wheel_mb']} MB, with the shipped "
            f"models). No TensorFlow, Keras, librosa, scipy, Streamlit or plotly.\n\n"
            f"| distribution | MB |\n|---|---|\n{rows}\n")


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    report = {"provenance": provenance("default")}
    with tempfile.TemporaryDirectory() as work:
        report.update(measure(Path(work)))
    write_results(RESULTS / "package_size", report, markdown(report))


if __name__ == "__main__":
    main()
