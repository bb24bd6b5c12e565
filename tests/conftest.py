import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

# Never read the developer's own preferences (~/.config/dicomtui/config.toml): a saved time format
# or column choice changed what the UI and --summary print.  Subprocesses inherit this; tmux
# sessions get it with -e (a running tmux server has its own environment).
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="dicomtui-test-config-")

from capture_tools import FIXTURES  # noqa: E402

from dicomtui.core.pipeline import AnalysisConfig, analyze  # noqa: E402
from dicomtui.cli import make_host  # noqa: E402


@pytest.fixture(scope="session")
def plugin_host():
    return make_host()


@pytest.fixture(scope="session")
def analyze_fixture(plugin_host):
    """Analyse a fixture capture once per session (they are immutable)."""
    cache = {}

    def run(name: str, **config):
        key = (name, tuple(sorted(config.items())))
        if key not in cache:
            cache[key] = analyze([str(FIXTURES / name)], AnalysisConfig(**config), plugin_host)
        return cache[key]

    return run


def analyze_path(path, host=None, **config):
    return analyze([str(path)], AnalysisConfig(**config), host or make_host())


def stream_images(analysis):
    """{(client, server): (client bytes, server bytes)} with gaps as zero bytes, plus gap lists."""
    images = {}
    for connection in analysis.connections:
        parts = []
        for direction in (0, 1):
            chunks = connection.streams[direction]
            data = bytearray(chunks.end)
            for offset, source, file_offset, length in zip(chunks.stream_offsets, chunks.sources,
                                                           chunks.file_offsets, chunks.lengths):
                data[offset : offset + length] = analysis.buffers[source][file_offset : file_offset + length]
            parts.append((bytes(data), [(g.stream_offset, g.length) for g in chunks.gaps]))
        images[(connection.client, connection.server)] = tuple(parts)
    return images


requires_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
