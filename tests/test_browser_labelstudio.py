"""Headless Chromium opens the labeling page of one task in a real Label Studio; the screenshot shows the map.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON messages
ending in NUL on file descriptors 3 and 4), so no websocket or browser-automation package is needed.
The session cookie comes from logging in with ``requests``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-pipe",
    "--window-size=1400,1000",
]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no headless Chromium (Debian: apt-get install -y chromium; .ci/run installs it)")


class Chromium:
    """The few DevTools calls the test needs, over --remote-debugging-pipe."""

    def __init__(self, exe: str, user_data_dir: Path, log_path: Path):
        r_cmd, w_cmd = os.pipe()  # we write commands, Chromium reads them on fd 3
        r_out, w_out = os.pipe()  # Chromium writes on fd 4, we read

        def child_fds():
            os.dup2(r_cmd, 3)
            os.dup2(w_out, 4)

        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [exe, *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", "about:blank"],
            close_fds=False,
            preexec_fn=child_fds,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        os.close(r_cmd)
        os.close(w_out)
        self.w = os.fdopen(w_cmd, "wb", buffering=0)
        self.r = os.fdopen(r_out, "rb", buffering=0)
        self.buf = b""
        self.next_id = 0

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.w.write(json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                m = json.loads(raw)
                if m.get("id") == self.next_id:
                    if "error" in m:
                        raise RuntimeError(f"{method}: {m['error']}")
                    return m.get("result", {})
            chunk = self.r.read(1 << 16)
            if not chunk:
                raise RuntimeError(f"Chromium closed the pipe during {method}")
            self.buf += chunk

    def open(self, url: str, site: str, cookies) -> str:
        """A new 1400 x 1000 page with the session cookies of ``site``, navigated to ``url``; its session id."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for c in cookies:
            self.call("Network.setCookie", {"name": c.name, "value": c.value, "url": site + "/"}, sid)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
            sid,
        )
        self.call("Page.enable", {}, sid)
        self.call("Page.navigate", {"url": url}, sid)
        return sid

    def close(self):
        try:
            self.call("Browser.close")
        except (RuntimeError, OSError):
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        for f in (self.w, self.r, self.log):
            f.close()


def _login(url: str, email: str, password: str):
    import requests

    s = requests.Session()
    page = s.get(url + "/user/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    r = s.post(
        url + "/user/login/",
        data={"email": email, "password": password, "csrfmiddlewaretoken": token},
        headers={"Referer": url + "/user/login/"},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 302 and "sessionid" in s.cookies, "login failed"
    return s.cookies


def _near(img: np.ndarray, rgb, tol: int = 12) -> int:
    return int((np.abs(img[..., :3].astype(int) - np.array(rgb)[None, None, :]).max(axis=-1) <= tol).sum())


@pytest.mark.labelstudio
@pytest.mark.browser
def test_labeling_page_shows_the_map(labelstudio, monkeypatch, tmp_path):
    from matplotlib import colormaps
    from matplotlib.image import imread

    from attnpatterns.annotate import labelstudio as lsc
    from attnpatterns.annotate.sample import MapItem

    exe = _chromium()
    server, creds = labelstudio
    monkeypatch.setenv("LABEL_STUDIO_URL", server.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", creds.token)
    monkeypatch.setenv("ATTN_CLASSIFIER_DIR", str(tmp_path / "no-classifier"))

    tokens = ["[CLS]"] + [f"w{i}" for i in range(10)] + ["[SEP]"]
    attn = np.full((12, 12), 0.02, np.float32)
    attn[:, 0] = 0.78  # a vertical map: a yellow [CLS] column over a dark purple field
    item = MapItem(
        map_id="raw-pre-TEST-1-L0H0",
        kind="raw",
        attn=attn,
        tokens=tokens,
        source_model="hand-made",
        model_state="pre",
        task="TEST",
        example="1",
        layer=0,
        head=0,
    )
    res = lsc.push([item], "browser-check")
    conn = lsc.connect()
    [task] = list(conn.sdk.tasks.list(project=res.project_id, fields="all"))

    cookies = _login(server.url, creds.username, creds.password)
    browser = Chromium(exe, tmp_path / "chromium-profile", tmp_path / "chromium.log")
    try:
        sid = browser.open(f"{server.url}/projects/{res.project_id}/data?task={task.id}", server.url, cookies)
        yellow, purple = [(np.array(colormaps["viridis"](x)[:3]) * 255).round().astype(int) for x in (1.0, 0.0)]
        shot = tmp_path / "labeling-page.png"
        deadline = time.monotonic() + 120
        while True:  # the labeling app renders in steps; poll until the map is on screen
            time.sleep(2)
            png = base64.b64decode(browser.call("Page.captureScreenshot", {"format": "png"}, sid)["data"])
            shot.write_bytes(png)
            img = (imread(shot)[..., :3] * 255).round().astype(int)
            if (_near(img, yellow) > 2000 and _near(img, purple) > 20000) or time.monotonic() > deadline:
                break
        title = browser.call("Runtime.evaluate", {"expression": "document.title"}, sid)["result"].get("value", "")
        text = browser.call("Runtime.evaluate", {"expression": "document.body.innerText"}, sid)["result"].get(
            "value", ""
        )
    finally:
        browser.close()
    keep = os.environ.get("ATTN_TEST_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)
    assert "login" not in title.lower(), f"not logged in (page title {title!r})"
    # the map's [CLS] column (top of the viridis scale) and its dark field (bottom) are on screen, large
    assert _near(img, yellow) > 2000, f"no viridis yellow in the screenshot {shot}"
    assert _near(img, purple) > 20000, f"no viridis purple field in the screenshot {shot}"
    # the labeling interface is there: the five choices under the image
    for label in ("vertical", "diagonal", "vertical+diagonal", "block", "heterogeneous"):
        assert label in text, f"choice {label!r} not on the labeling page"


@pytest.mark.labelstudio
@pytest.mark.browser
def test_labeling_page_shows_the_backend_suggestion(labelstudio, monkeypatch, tmp_path):
    """The ML backend's prediction, requested by Label Studio itself, is pre-selected on the labeling page, with
    the backend's model version and score on its tab."""
    from attnpatterns.annotate import labelstudio as lsc
    from attnpatterns.annotate.backend import PatternBackend, make_app, serve_in_thread
    from attnpatterns.annotate.sample import MapItem

    exe = _chromium()
    server, creds = labelstudio
    monkeypatch.setenv("LABEL_STUDIO_URL", server.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", creds.token)
    models = tmp_path / "models"
    models.mkdir()
    for p in (Path(__file__).resolve().parents[1] / "models").glob("pattern-cnn-*.*"):
        if "retrained" not in p.name:
            shutil.copyfile(p, models / p.name)
    be = PatternBackend(models, data=None)
    running = serve_in_thread(make_app(be))
    tokens = ["[CLS]"] + [f"w{i}" for i in range(10)] + ["[SEP]"]
    attn = np.full((12, 12), 0.02, np.float32)
    attn[:, 0] = 0.78
    item = MapItem(
        map_id="raw-pre-TEST-2-L0H0",
        kind="raw",
        attn=attn,
        tokens=tokens,
        source_model="hand-made",
        model_state="pre",
        task="TEST",
        example="2",
        layer=0,
        head=0,
    )
    try:
        # no static pre-annotation: the prediction comes from Label Studio asking the connected backend
        res = lsc.push([item], "browser-backend", predictions=False, backend=running.url)
        conn = lsc.connect()
        [task] = list(conn.sdk.tasks.list(project=res.project_id, fields="all"))
        [pred] = task.predictions
        assert pred.model_version == be.model_version()
        label = pred.result[0]["value"]["choices"][0]

        cookies = _login(server.url, creds.username, creds.password)
        browser = Chromium(exe, tmp_path / "chromium-profile", tmp_path / "chromium.log")
        try:
            sid = browser.open(f"{server.url}/projects/{res.project_id}/data?task={task.id}", server.url, cookies)
            checked_js = (
                "JSON.stringify(Array.from(document.querySelectorAll('input:checked'))"
                ".map(e => (e.closest('label') || e.parentElement).innerText.trim()).filter(t => t))"
            )
            deadline = time.monotonic() + 120
            while True:  # the labeling app renders in steps: poll until the choice and the prediction's tab are there
                time.sleep(2)
                checked = json.loads(
                    browser.call("Runtime.evaluate", {"expression": checked_js}, sid)["result"].get("value") or "[]"
                )
                text = browser.call("Runtime.evaluate", {"expression": "document.body.innerText"}, sid)["result"].get(
                    "value", ""
                )
                if (checked and be.model_version()[:8] in text) or time.monotonic() > deadline:
                    break
            shot = tmp_path / "labeling-page-suggestion.png"
            shot.write_bytes(base64.b64decode(browser.call("Page.captureScreenshot", {"format": "png"}, sid)["data"]))
        finally:
            browser.close()
    finally:
        running.stop()
    keep = os.environ.get("ATTN_TEST_SCREENSHOT_SUGGESTION")
    if keep:
        shutil.copyfile(shot, keep)
    # the suggestion is the selected choice, and its tab names the backend's model version and score
    assert [re.sub(r"\[\d\]$", "", c) for c in checked] == [label], (checked, shot)
    assert be.model_version()[:8] in text, f"no tab of model version {be.model_version()} on the page ({shot})"
    assert f"{pred.score * 100:.2f}%" in text, f"score {pred.score} not shown ({shot})"
