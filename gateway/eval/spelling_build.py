"""``tiergate train spelling``: the word frequencies the semantic cache's spelling correction
reads.

When to use: once, to rebuild ``cache/artifacts/spelling.json.gz`` from wordfreq's "large"
English list (321,180 words with their frequency in Wikipedia, subtitles, news, books, web
text, Reddit and Twitter, to the nearest centibel; data under CC BY-SA 4.0, the artifact is
shared under the same licence), which ships inside the ``wordfreq`` 3.1.1 wheel on PyPI:
``pip download wordfreq==3.1.1 --no-deps -d var/``. The same wheel gives the same file,
byte for byte. Reading the wheel's msgpack file needs ``msgpack`` (a dev dependency).

Kept: words in ASCII letters only, 3 to 30 of them, in lower case, each with its Zipf
frequency (log10 of occurrences per billion words; 1.0 is the list's floor, "the" is 7.7).
"""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

MEMBER = "wordfreq/data/large_en.msgpack.gz"


def zipf(source: Path) -> dict[str, float]:
    """Word -> Zipf frequency, from the wheel (or the .msgpack.gz file itself)."""
    import msgpack  # type: ignore[import-untyped]

    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            packed = wheel.read(MEMBER)
    else:
        packed = source.read_bytes()
    doc = msgpack.unpackb(gzip.decompress(packed), raw=False)
    if not doc or doc[0] != {"format": "cB", "version": 1}:
        raise ValueError(f"{source}: not a wordfreq cBpack file")
    out: dict[str, float] = {}
    for centibels, words in enumerate(doc[1:]):  # index i: a frequency of 10 ** (-i / 100)
        for word in words:
            if word.isascii() and word.isalpha() and 3 <= len(word) <= 30 and word.islower():
                out.setdefault(word, round(9 - centibels / 100, 2))
    return out


def build(source: Path, out: Path, minimum: int = 100_000) -> str:
    """Write the artifact; a one-line summary. Fewer than ``minimum`` words: not the list."""
    words = zipf(source)
    if len(words) < minimum:
        raise ValueError(f"{source}: only {len(words)} words; is it wordfreq's large_en list?")
    bins: dict[str, list[str]] = {}
    for word, z in sorted(words.items(), key=lambda kv: (-kv[1], kv[0])):
        bins.setdefault(f"{z:.2f}", []).append(word)
    doc = {
        "source": f"wordfreq 3.1.1 {MEMBER} (CC BY-SA 4.0)",
        "zipf": {z: " ".join(ws) for z, ws in bins.items()},
    }
    data = json.dumps(doc, separators=(",", ":")).encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as f:
        f.write(data)
    return f"{out}: {len(words)} words, {out.stat().st_size} bytes"
