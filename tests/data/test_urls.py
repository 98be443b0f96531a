"""Image and audio cells that are URLs: refused until allowed, then read through fsspec (memory://
and a local HTTP server here: no internet), bounded in size, never confined to --data-root."""
from __future__ import annotations

import functools
import http.server
import threading

import pandas as pd
import pytest
from typer.testing import CliRunner

from synthetic import FAST, fit_saved
from polymodal import Predictor
from polymodal.cli import app
from polymodal.config import load_config
from polymodal.data.tables import Table
from polymodal.data.urls import UrlReader, is_url
from polymodal.errors import DataError
from polymodal.preprocessing import BadInput, OverLimit

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("urls")
    predictor = fit_saved(folder, n=45)
    return folder, predictor


@pytest.fixture(scope="module")
def server(model):
    """A local HTTP server of the model's folder (its images under img/)."""
    folder, _ = model
    handler = functools.partial(_Quiet, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request lines on stderr
        pass


def _memory_table(folder, frame):
    import fsspec

    memory = fsspec.filesystem("memory")
    for path in frame["photo"]:
        memory.pipe(f"/polymodal-test/{path}", (folder / path).read_bytes())
    return frame.assign(photo="memory://polymodal-test/" + frame["photo"])


def test_a_url_cell_is_refused_until_urls_are_allowed(model):
    folder, predictor = model
    frame = pd.read_csv(folder / "train.csv").head(6)
    urls = Table(_memory_table(folder, frame), folder, "urls.csv")
    with pytest.raises(DataError) as info:
        predictor.predict(urls)
    message = str(info.value)
    assert "a URL: reading URLs is off" in message and "--allow-urls" in message and "allow_urls: true" in message
    allowed = Predictor.load(folder / "model", allow_urls=True).predict_report(urls)
    local = predictor.predict_report(Table(frame, folder, "local.csv"))
    pd.testing.assert_frame_equal(allowed.probabilities, local.probabilities)  # the same files, the same answers
    assert load_config({**FAST, "allow_urls": True}).allow_urls  # the config key, off by default
    assert Predictor.load(folder / "model").fitted_.config.allow_urls is False


def test_a_fit_reads_url_images_when_allowed(model, tmp_path):
    folder, _ = model
    frame = pd.read_csv(folder / "train.csv")
    urls = _memory_table(folder, frame)
    with pytest.raises(DataError, match="no training image could be read|reading URLs is off"):
        Predictor(label="label", config=FAST, verbose=False).fit(Table(urls, folder, "urls.csv"))
    remote = Predictor(label="label", config=FAST, verbose=False, allow_urls=True).fit(Table(urls, folder, "urls.csv"))
    local = Predictor(label="label", config=FAST, verbose=False).fit(Table(frame, folder, "train.csv"))
    assert remote.fit_info_["train_rows"] == local.fit_info_["train_rows"]
    a, b = remote.preprocessors_["photo"], local.preprocessors_["photo"]
    assert (a.mean_, a.std_) == (b.mean_, b.std_)  # the image statistics come from the same files
    pd.testing.assert_frame_equal(remote.predict_proba(Table(frame, folder, "t.csv")),
                                  local.predict_proba(Table(frame, folder, "t.csv")))
    assert remote.config_.allow_urls is False  # the permission was this run's; the saved config keeps its own


def test_urls_over_http_and_a_missing_file_skipped_with_its_reason(model, server, tmp_path):
    folder, _ = model
    frame = pd.read_csv(folder / "train.csv").head(6)
    frame["photo"] = server + "/" + frame["photo"]
    frame.loc[3, "photo"] = server + "/img/absent.png"
    frame.to_parquet(tmp_path / "remote.parquet")
    predictor = Predictor.load(folder / "model", allow_urls=True)
    report = predictor.predict_report(tmp_path / "remote.parquet", on_bad_input="skip_row")
    assert report.predictions.notna().sum() == 5 and report.predictions.isna()[3]
    assert report.skipped["reason"].iloc[0] == "no file at this URL"
    result = CliRunner().invoke(app, [
        "predict", str(folder / "model"), "--data", str(tmp_path / "remote.parquet"), "--out",
        str(tmp_path / "p.csv"), "--on-bad-input", "skip_row", "--allow-urls"])
    assert result.exit_code == 0 and "1 rows skipped" in result.output, result.output


def test_a_url_is_not_a_path_under_the_data_root(model, tmp_path):
    folder, _ = model
    frame = _memory_table(folder, pd.read_csv(folder / "train.csv").head(3))
    predictor = Predictor.load(folder / "model", data_root=tmp_path, allow_urls=True)
    assert predictor.predict_report(Table(frame, folder, "urls.csv")).predictions.notna().all()
    with pytest.raises(DataError, match="a URL: reading URLs is off"):  # not "outside the data root"
        Predictor.load(folder / "model", data_root=tmp_path).predict(Table(frame, folder, "urls.csv"))


def test_what_counts_as_a_url_and_the_limits(model):
    folder, _ = model
    assert is_url("https://example.org/a.png") and is_url(" s3://bucket/a.wav") and is_url("memory://x")
    assert not is_url("C://photos/a.png") and not is_url("img/a.png") and not is_url(b"https://")
    png = (folder / "img" / "000.png").read_bytes()
    _memory_table(folder, pd.DataFrame({"photo": ["img/000.png"]}))
    reader = UrlReader(True, max_bytes=len(png) - 1)
    with pytest.raises(OverLimit, match="larger than"):
        reader.fetch("memory://polymodal-test/img/000.png")
    assert UrlReader(True).fetch("memory://polymodal-test/img/000.png") == {
        "bytes": png, "path": "memory://polymodal-test/img/000.png"}
    with pytest.raises(BadInput, match="write the file's path instead"):
        UrlReader(True).fetch("file:///etc/passwd")
    with pytest.raises(BadInput, match="unknown URL scheme nosuchscheme://"):
        UrlReader(True).fetch("nosuchscheme://x/a.png")
    hf_cell = {"bytes": None, "path": "memory://polymodal-test/img/000.png"}  # a datasets Image cell naming a URL
    pre = Predictor.load(folder / "model").preprocessors_["photo"]
    assert UrlReader(True).resolve(pre, {"photo": hf_cell})["photo"]["bytes"] == png


def test_s3_without_its_filesystem_package_says_what_to_install():
    pytest.importorskip("fsspec")
    try:
        import s3fs  # noqa: F401
    except ImportError:
        with pytest.raises(BadInput, match="s3://.*not installed"):
            UrlReader(True).fetch("s3://bucket/a.png")
    else:
        pytest.skip("s3fs is installed")
