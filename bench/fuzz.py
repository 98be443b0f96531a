"""Mutation fuzzer: real files with flipped bits, truncations and splices, through ``predict``.

Takes real images (Fashion-MNIST written as PNG, plus JPEG/GIF/BMP/TIFF/WebP and rendered
emoji with alpha), real recordings (FSDD WAV, plus FLAC/OGG/8-, 24-bit and float WAV, stereo,
8–48 kHz), real sentences (SST-2, emoji names) and tables (CSV/TSV/JSONL/JSON/Parquet) from
``$POLYMODAL_DATA``, trains a small image+audio+text+tabular model on clean files, then
mutates the files and runs each one through ``Predictor.predict`` (and ``predict_proba`` /
``evaluate``) under a random ``on_bad_input`` policy, half of them with a data root, in a worker process
with a timeout.

Every outcome is one of: predicted; predicted with the bad input skipped and reported
(``skip_row`` / ``skip_modality``); a ``PolymodalError`` whose message names the column or
the file (useful); a ``PolymodalError`` whose message does not (unhelpful); any other
exception; a timeout (hang); a crash of the worker. All but the first three are failures.

    POLYMODAL_DATA=../shared/data .venv/bin/python bench/fuzz.py --inputs 2400 --damaged 500
    # bounded, as CI runs it: --inputs 300 --damaged 100; damaged folders only: --inputs 0

``--damaged N`` also runs N damaged model directories, checkpoint folders and vector indexes
whose manifests were recomputed (``bench/fuzz_damaged.py``).

Prints one row per input kind and ``non-PolymodalError failures: N``; exits 1 when N > 0.
"""
from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import random
import shutil
import struct
import sys
import tempfile
import time
import traceback
import zlib
from collections import Counter
from pathlib import Path

KINDS = ("image", "audio", "text", "table")
SHARE = {"image": 0.3, "audio": 0.3, "text": 0.15, "table": 0.25}
POLICIES = ("error", "skip_row", "skip_modality")
INTERESTING_BYTES = (0x00, 0xFF, 0x7F, 0x80, 0x01, 0x20)
INTERESTING_WORDS = (0, 1, 0x7FFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


# ----------------------------------------------------------------------------- corpus
def build_corpus(data: Path, work: Path, rng: random.Random) -> dict:
    """Clean seed files under ``work/seed`` and a training table ``work/train.csv``."""
    import numpy as np
    import pandas as pd
    import soundfile as sf
    import soxr
    from PIL import Image, ImageDraw, ImageFont

    from polymodal.datasets.fashion_mnist import load_fashion_mnist

    seed = work / "seed"
    seed.mkdir(parents=True)
    images, labels = load_fashion_mnist(data, "test")
    picks = rng.sample(range(len(images)), 64)
    image_files = []
    for n, i in enumerate(picks):
        path = seed / f"fm{n:02d}.png"
        Image.fromarray(images[i]).save(path)
        image_files.append(path)
    grey = Image.fromarray(images[picks[0]])
    variants = {"v.jpg": grey.convert("RGB"), "v.gif": grey.convert("P"), "v.bmp": grey,
                "v.tif": grey.convert("I;16"), "v.webp": grey.convert("RGB"),
                "v_cmyk.jpg": grey.convert("CMYK"), "v_la.png": grey.convert("LA")}
    font = ImageFont.truetype(str(data / "emoji" / "NotoColorEmoji.ttf"), 109)
    for n, char in enumerate(("\U0001F600", "\U0001F34E", "\U0001F697")):
        canvas = Image.new("RGBA", (136, 128), (0, 0, 0, 0))
        ImageDraw.Draw(canvas).text((0, 0), char, font=font, embedded_color=True)
        variants[f"emoji{n}.png"] = canvas.resize((32, 32))
    for name, image in variants.items():
        image.save(seed / name)
        image_files.append(seed / name)
    image_files.append(seed / "bomb.png")
    (seed / "bomb.png").write_bytes(_png_bomb(100_000, 100_000))

    clips = sorted((data / "fsdd").glob("*.wav"))
    clip_picks = rng.sample(clips, 64)
    audio_files = []
    for n, clip in enumerate(clip_picks):
        path = seed / f"fsdd{n:02d}.wav"
        shutil.copyfile(clip, path)
        audio_files.append(path)
    wave, rate = sf.read(clip_picks[0], dtype="float32")
    stereo = np.stack([wave, wave[::-1]], axis=1)
    formats = [("a.flac", wave, rate, "FLAC", None), ("a.ogg", wave, rate, "OGG", "VORBIS"),
               ("a8.wav", soxr.resample(wave, rate, 11025), 11025, "WAV", "PCM_U8"),
               ("a24.wav", stereo, rate, "WAV", "PCM_24"),
               ("af.wav", soxr.resample(wave, rate, 48000), 48000, "WAV", "FLOAT"),
               ("a22.ogg", soxr.resample(wave, rate, 22050), 22050, "OGG", "VORBIS"),
               ("a44.flac", soxr.resample(stereo, rate, 44100), 44100, "FLAC", "PCM_24"),
               ("a.mp3", wave, rate, "MP3", None)]
    for name, samples, sr, fmt, subtype in formats:
        try:
            sf.write(seed / name, samples, sr, format=fmt, subtype=subtype)
        except Exception:  # noqa: BLE001 - a codec this libsndfile lacks
            (seed / name).unlink(missing_ok=True)
            continue
        audio_files.append(seed / name)

    sentences = [line.split(" ", 1)[1].strip() for line in
                 (data / "text" / "sst2" / "stsa.binary.train").read_text().splitlines()[:400] if " " in line]
    emoji_names = pd.read_csv(data / "emoji" / "splits.csv")["name"].tolist()[:200]
    texts = sentences + emoji_names

    rows = []
    for n in range(48):
        clip = clip_picks[n % len(clip_picks)]
        digit = int(clip.name.split("_")[0])
        rows.append({"image": image_files[n % 40].relative_to(work).as_posix(),
                     "audio": audio_files[n % 40].relative_to(work).as_posix(),
                     "text": texts[n], "size": float(n % 7) + 0.5,
                     "shop": ("north", "south", "east")[n % 3], "label": "even" if digit % 2 == 0 else "odd"})
    train = pd.DataFrame(rows)
    train.to_csv(work / "train.csv", index=False)
    return {"images": image_files, "audio": audio_files, "texts": texts, "train": train}


def _png_bomb(width: int, height: int) -> bytes:
    """A valid PNG whose header claims ``width × height`` grey pixels (a decompression bomb)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


TRAIN_CONFIG = {
    "seed": 0,
    "columns": {"image": "image", "audio": "audio", "text": "text", "size": "numeric", "shop": "categorical"},
    "text": {"preprocess": {"vocab_size": 200, "max_length": 32}, "encoder": {"name": "gru"}},
    "image": {"preprocess": {"size": 16}, "encoder": {"name": "cnn", "channels": [8, 16]}},
    "audio": {"preprocess": {"max_seconds": 1.0, "n_mels": 16}},
    "training": {"max_epochs": 2, "batch_size": 16, "progress_bar": False, "precision": "32"},
}


# ----------------------------------------------------------------------------- mutators
def mutate(blob: bytes, rng: random.Random, others: list[bytes]) -> tuple[bytes, str]:
    """One to three random mutations of ``blob``; returns the bytes and their names."""
    names, out = [], blob
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        name = rng.choice(("flip", "flip_header", "bytes", "word", "truncate", "splice",
                           "insert", "delete", "duplicate"))
        out = MUTATORS[name](bytearray(out), rng, others)
        names.append(name)
    return bytes(out), "+".join(names)


def _flip(b: bytearray, rng: random.Random, _o, limit: int | None = None) -> bytearray:
    if b:
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(min(len(b), limit or len(b)))
            b[i] ^= 1 << rng.randrange(8)
    return b


def _bytes(b: bytearray, rng: random.Random, _o) -> bytearray:
    if b:
        at = rng.randrange(len(b))
        for k in range(rng.randint(1, 4)):
            if at + k < len(b):
                b[at + k] = rng.choice(INTERESTING_BYTES)
    return b


def _word(b: bytearray, rng: random.Random, _o) -> bytearray:
    """A header-sized integer field set to an extreme value (huge sizes, rates, counts)."""
    if len(b) >= 8:
        at = rng.randrange(0, min(len(b) - 4, 128))
        b[at:at + 4] = struct.pack(rng.choice(("<I", ">I")), rng.choice(INTERESTING_WORDS))
    return b


def _truncate(b: bytearray, rng: random.Random, _o) -> bytearray:
    return b[: rng.randrange(len(b) + 1)] if rng.random() < 0.9 else bytearray()


def _splice(b: bytearray, rng: random.Random, others: list[bytes]) -> bytearray:
    other = rng.choice(others)
    return b[: rng.randrange(len(b) + 1)] + other[rng.randrange(len(other) + 1):]


def _insert(b: bytearray, rng: random.Random, _o) -> bytearray:
    at = rng.randrange(len(b) + 1)
    return b[:at] + bytearray(rng.randrange(256) for _ in range(rng.randint(1, 64))) + b[at:]


def _delete(b: bytearray, rng: random.Random, _o) -> bytearray:
    if len(b) < 2:
        return b
    at = rng.randrange(len(b))
    return b[:at] + b[at + rng.randint(1, max(1, len(b) // 8)):]


def _duplicate(b: bytearray, rng: random.Random, _o) -> bytearray:
    if not b:
        return b
    at = rng.randrange(len(b))
    piece = b[at: at + rng.randint(1, 256)]
    return b[:at] + piece * rng.randint(2, 16) + b[at:]


MUTATORS = {"flip": _flip, "flip_header": lambda b, r, o: _flip(b, r, o, 64), "bytes": _bytes,
            "word": _word, "truncate": _truncate, "splice": _splice, "insert": _insert,
            "delete": _delete, "duplicate": _duplicate}


# ----------------------------------------------------------------------------- cases
def make_case(kind: str, n: int, rng: random.Random, corpus: dict, work: Path) -> dict:
    """Write one mutated input under ``work/cases`` and describe how to run it."""
    import pandas as pd

    cases = work / "cases"
    train: pd.DataFrame = corpus["train"]
    base = train.drop(columns=["label"]).sample(3, random_state=rng.randrange(2**31)).reset_index(drop=True)
    base = base.astype(object)  # object cells hold any str (arrow strings refuse surrogates)
    files = [p.read_bytes() for p in corpus["images"][:8] + corpus["audio"][:8]]
    job = {"kind": kind, "policy": rng.choice(POLICIES), "call": rng.choice(("predict", "predict", "proba")),
           "data_root": str(work) if rng.random() < 0.5 else None}  # paths must stay in work/
    if kind in ("image", "audio"):
        pool = corpus["images"] if kind == "image" else corpus["audio"]
        source = rng.choice(pool)
        blob, how = mutate(source.read_bytes(), rng, files)
        ext = source.suffix if rng.random() < 0.85 else rng.choice((".png", ".jpg", ".wav", ".flac", ".ogg", ".gif"))
        path = cases / f"{kind}{n:05d}{ext}"
        path.write_bytes(blob)
        base.loc[rng.randrange(3), kind] = path.relative_to(work).as_posix()
        job.update(how=f"{source.name}: {how}", frame=base, names=[path.name, kind])
    elif kind == "text":
        text = rng.choice(corpus["texts"])
        blob, how = mutate(text.encode("utf-8"), rng, [t.encode() for t in corpus["texts"][:50]])
        codec = rng.choice(("surrogateescape", "replace", "latin-1"))
        cell = blob.decode("latin-1") if codec == "latin-1" else blob.decode("utf-8", errors=codec)
        base.loc[rng.randrange(3), "text"] = cell
        job.update(how=f"text: {how} ({codec})", frame=base, names=["text"])
        if rng.random() < 0.3:  # the same text in a CSV file, bytes as mutated (maybe not UTF-8)
            path = work / f"table{n:05d}_text.csv"  # beside train.csv: its paths resolve
            path.write_bytes(base.to_csv(index=False).encode("utf-8", errors="surrogateescape"))
            job.update(frame=None, table=str(path), names=["text", path.name])
    else:
        fmt = rng.choice((".csv", ".tsv", ".jsonl", ".json", ".parquet"))
        labelled = rng.random() < 0.3
        frame = train.sample(5, random_state=rng.randrange(2**31)) if labelled else base
        blob, how = mutate(_serialise(frame, fmt), rng, [_serialise(train.head(3), ".csv")])
        path = work / f"table{n:05d}{fmt}"  # beside train.csv, so relative paths resolve
        path.write_bytes(blob)
        job.update(how=f"{fmt}: {how}", frame=None, table=str(path), names=[path.name, "image", "audio", "text", "size", "shop", "label"],
                   call="evaluate" if labelled else job["call"])
    return job


def _serialise(frame, fmt: str) -> bytes:
    if fmt == ".csv":
        return frame.to_csv(index=False).encode()
    if fmt == ".tsv":
        return frame.to_csv(index=False, sep="\t").encode()
    if fmt == ".jsonl":
        return frame.to_json(orient="records", lines=True).encode()
    if fmt == ".json":
        return frame.to_json(orient="records").encode()
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


# ----------------------------------------------------------------------------- worker
def worker(model_dir: str, work: str, conn) -> None:
    """Load the model once, then run jobs from ``conn`` until it closes."""
    import logging

    import torch

    torch.set_num_threads(1)
    logging.getLogger("polymodal").setLevel(logging.ERROR)
    from polymodal import Predictor
    from polymodal.data.tables import Table
    from polymodal.errors import PolymodalError

    predictor = Predictor.load(model_dir)
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        policy = job["policy"]
        predictor.data_root = job["data_root"]
        data = job["table"] if job.get("table") else Table(job["frame"], Path(work), "fuzz case")
        try:
            if job["call"] == "evaluate":
                skipped = predictor.evaluate_report(data, on_bad_input=policy).skipped
            elif job["call"] == "proba":
                predictor.predict_proba(data, on_bad_input=policy)
                skipped = None
            else:
                skipped = predictor.predict_report(data, on_bad_input=policy).skipped
            conn.send(("skipped" if skipped is not None and len(skipped) else "predicted", "", ""))
        except PolymodalError as exc:
            message = str(exc)
            useful = len(message) >= 30 and any(name in message for name in job["names"])
            conn.send(("polymodal" if useful else "unhelpful", type(exc).__name__, message[:300]))
        except BaseException as exc:  # noqa: BLE001 - exactly what the fuzzer looks for
            conn.send(("other", type(exc).__name__, "".join(traceback.format_exc())[-1500:]))


class Runner:
    """One worker process; restarted after a timeout or a crash."""

    def __init__(self, model_dir: Path | None, work: Path | None, timeout: float, target=None) -> None:
        self.args, self.timeout, self.proc = (str(model_dir), str(work)), timeout, None
        self.target = target or worker  # another worker (fuzz_damaged.worker) takes the pipe only
        if target is not None:
            self.args = ()

    def start(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=self.target, args=(*self.args, child), daemon=True)
        self.proc.start()
        child.close()

    def run(self, job: dict) -> tuple[str, str, str]:
        if self.proc is None or not self.proc.is_alive():
            self.start()
        send = {k: v for k, v in job.items() if k != "how"}
        try:
            self.conn.send(send)
            # The first job also waits for the worker's start-up (imports, model load).
            if self.conn.poll(self.timeout + (60 if not getattr(self, "_warm", False) else 0)):
                self._warm = True
                return self.conn.recv()
            self.stop()
            return ("timeout", "", f"no answer within {self.timeout:.0f} s")
        except (EOFError, BrokenPipeError, ConnectionResetError):
            code = self.proc.exitcode if self.proc else None
            self.stop()
            return ("crash", "", f"worker died (exit code {code})")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.join(5)
        self.proc, self._warm = None, False


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", type=int, default=2400, help="mutated inputs to run (all kinds)")
    parser.add_argument("--damaged", type=int, default=500,
                        help="damaged model directories, checkpoint folders and indexes (bench/fuzz_damaged.py)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per input before it counts as a hang")
    parser.add_argument("--data-dir", type=Path, default=None, help="real data (default: $POLYMODAL_DATA)")
    parser.add_argument("--work-dir", type=Path, default=None, help="scratch folder (default: a temp folder, removed)")
    parser.add_argument("--keep", type=Path, default=None, help="copy failing inputs and their tracebacks here")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)

    data = args.data_dir or (Path(os.environ["POLYMODAL_DATA"]) if os.environ.get("POLYMODAL_DATA") else None)
    if data is None or not data.is_dir():
        print("error: pass --data-dir or set POLYMODAL_DATA to the shared data folder", file=sys.stderr)
        return 2
    import logging

    logging.getLogger("polymodal").setLevel(logging.ERROR)
    from polymodal import Predictor

    rng = random.Random(args.seed)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="polymodal-fuzz-"))
    start = time.perf_counter()
    try:
        corpus = build_corpus(data, work, rng)
        (work / "cases").mkdir()
        predictor = Predictor(label="label", config=TRAIN_CONFIG, verbose=False).fit(
            work / "train.csv", checkpoint_dir=work / "run")  # the run folder: a damaged-case source
        predictor.save(work / "model")
        setup = time.perf_counter() - start
        counts = {k: round(args.inputs * SHARE[k]) for k in KINDS}
        counts["table"] = args.inputs - sum(counts[k] for k in KINDS if k != "table")
        plan = [k for k in KINDS for _ in range(counts[k])]
        rng.shuffle(plan)
        runner = Runner(work / "model", work, args.timeout)
        table: dict[str, Counter] = {k: Counter() for k in KINDS}
        errors, failures, slowest = Counter(), [], (0.0, "")
        for n, kind in enumerate(plan):
            job = make_case(kind, n, rng, corpus, work)
            t0 = time.perf_counter()
            outcome, name, detail = runner.run(job)
            seconds = time.perf_counter() - t0
            if seconds > slowest[0] and n > 0:
                slowest = (seconds, f"{kind}, {job['how']}")
            table[kind][outcome] += 1
            if outcome == "polymodal":
                errors[name] += 1
            if outcome not in ("predicted", "skipped", "polymodal"):
                failures.append({"kind": kind, "how": job["how"], "outcome": outcome, "error": name,
                                 "detail": detail, "policy": job["policy"], "call": job["call"]})
                _keep(args.keep, work, job, failures[-1], n)
            for leftover in (work / "cases").iterdir():
                leftover.unlink()
            for leftover in work.glob("table*.*"):
                leftover.unlink()
        runner.stop()
        damaged = None
        if args.damaged:
            import fuzz_damaged

            t0, other = time.perf_counter(), Runner(None, None, args.timeout, target=fuzz_damaged.worker)
            damaged = fuzz_damaged.run_damaged(args.damaged, work, work / "model", work / "run",
                                               work / "train.csv", rng, other, mutate)
            other.stop()
            damaged = (*damaged, time.perf_counter() - t0)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    _report(args, table, errors, failures, slowest, setup, time.perf_counter() - start)
    if damaged is not None:
        import fuzz_damaged

        fuzz_damaged.report(*damaged)
    return 1 if failures or (damaged and damaged[1]) else 0


def _keep(folder: Path | None, work: Path, job: dict, failure: dict, n: int) -> None:
    """Copy a failing case (its files, its table or frame, what happened) into ``folder``."""
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    for path in [*(work / "cases").iterdir(), *work.glob("table*.*")]:
        shutil.copyfile(path, folder / f"{n:05d}-{path.name}")
    if job.get("frame") is not None:
        job["frame"].to_json(folder / f"{n:05d}-frame.json", orient="records")
    (folder / f"{n:05d}-failure.json").write_text(json.dumps(failure, indent=2))


def _report(args, table, errors, failures, slowest, setup, total) -> None:
    outcomes = ("predicted", "skipped", "polymodal", "unhelpful", "other", "timeout", "crash")
    heads = ("predicted", "skipped+reported", "PolymodalError", "unhelpful-msg", "other-exception",
             "timeout", "crash")
    print(f"polymodal fuzz: seed {args.seed}, {sum(sum(c.values()) for c in table.values()):,} mutated inputs, "
          f"timeout {args.timeout:.0f} s per input; setup {setup:.1f} s, total {total:.1f} s")
    widths = [len(h) + 2 for h in heads]
    print(f"{'kind':<8}{'inputs':>8}" + "".join(f"{h:>{w}}" for h, w in zip(heads, widths)))
    for kind in (*KINDS, "total"):
        counts = sum(table.values(), Counter()) if kind == "total" else table[kind]
        print(f"{kind:<8}{sum(counts.values()):>8}" + "".join(f"{counts[o]:>{w}}" for o, w in zip(outcomes, widths)))
    print("PolymodalError types: " + ", ".join(f"{k} {v}" for k, v in errors.most_common()))
    print(f"slowest input: {slowest[0]:.2f} s ({slowest[1]})")
    for failure in failures[:10]:
        print(f"FAILURE {failure['outcome']} {failure['error']} [{failure['kind']}, {failure['how']}, "
              f"{failure['policy']}, {failure['call']}]: {failure['detail'][-600:]}")
    print(f"non-PolymodalError failures: {sum(1 for f in failures if f['outcome'] != 'unhelpful')}")
    print(f"PolymodalErrors with an unhelpful message: {sum(1 for f in failures if f['outcome'] == 'unhelpful')}")
    if args.json:
        args.json.write_text(json.dumps({
            "seed": args.seed, "inputs": {k: dict(v) for k, v in table.items()},
            "errors": dict(errors), "failures": failures, "setup_seconds": setup, "total_seconds": total,
        }, indent=2))


if __name__ == "__main__":
    sys.exit(main())
