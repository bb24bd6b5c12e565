"""atheris entry point for the ``resync`` target (see harnesses.py); run all targets with run.py."""

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports(include=["dicomtui"]):
    from fuzz import harnesses

    harnesses.preload()  # everything the target reaches, imported (and so instrumented) now


def test_one_input(data: bytes) -> None:
    harnesses.resync(data)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
