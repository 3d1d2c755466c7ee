"""The client side of the ML backend (``attn annotate backend``): is it there, and its predictions for tasks. Used by
``attn annotate push --backend``; one-line errors naming the URL."""

from __future__ import annotations

from attnpatterns.errors import UserError

DEFAULT_PORT = 9090


def check_reachable(url: str, timeout: float = 3.0) -> dict:
    """The backend's /health answer, or a one-line UserError naming the URL."""
    import requests

    url = url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UserError(f"--backend '{url}' must start with http:// or https://, e.g. http://127.0.0.1:{DEFAULT_PORT}.")
    try:
        r = requests.get(url + "/health", timeout=timeout)
    except requests.RequestException as e:
        raise _unreachable(url, e) from None
    if r.status_code != 200 or not isinstance(_json(r), dict) or _json(r).get("status") != "UP":
        raise UserError(f"{url} answered /health with HTTP {r.status_code}, not as an ML backend; check --backend.")
    return _json(r)


def _unreachable(url: str, e: Exception) -> UserError:
    """The one-line error for a backend that does not answer at ``url``."""
    return UserError(
        f"cannot reach the ML backend at {url} ({type(e).__name__}); start it with 'attn annotate backend' or fix "
        "--backend."
    )


def _json(r):
    try:
        return r.json()
    except ValueError:
        return None


def backend_predict(url: str, tasks: list[dict], timeout: float = 300) -> list[dict]:
    """The backend's predictions for tasks (``{"data": {...}}``), in order; one-line errors."""
    import requests

    url = url.rstrip("/")
    try:
        r = requests.post(url + "/predict", json={"tasks": tasks}, timeout=timeout)
    except requests.RequestException as e:
        raise _unreachable(url, e) from None
    body = _json(r)
    if r.status_code != 200:
        msg = body.get("error") if isinstance(body, dict) else r.text[:200]
        raise UserError(f"the ML backend at {url} refused to predict (HTTP {r.status_code}): {msg}")
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list) or len(results) != len(tasks):
        raise UserError(f"the ML backend at {url} returned {len(results or [])} predictions for {len(tasks)} tasks.")
    return results
