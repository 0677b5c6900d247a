"""The viewer's web app: read-only pages over the store, each with a JSON twin."""

from __future__ import annotations

import functools
import hmac
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import GradeloopError, InputError, NotFoundError
from ..store import Store
from . import _compare, _data, _render

COOKIE = "gradeloop_view_token"
_INSTALL_HINT = "plotly is not installed: pip install 'gradeloop[view]'"


@functools.lru_cache(maxsize=1)
def plotly_js() -> str:
    """plotly.js as bundled in the ``plotly`` wheel (no CDN). Raises InputError with an install hint."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        raise InputError(_INSTALL_HINT, field="plotly") from None
    return get_plotlyjs()


def _json_response(data: Any, status: int = 200) -> Any:
    from starlette.responses import Response

    return Response(json.dumps(data, default=str, ensure_ascii=False), status_code=status,
                    media_type="application/json")


def _strip_json(value: str) -> tuple[str, bool]:
    return (value[:-5], True) if value.endswith(".json") else (value, False)


def _int(request: Any, name: str, default: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise InputError(f"{name} must be a whole number, got {raw!r}", field=name) from None


def _opt(request: Any, name: str) -> str | None:
    return request.query_params.get(name) or None


def _run_page(store: Store, request: Any, run_id: str, prices: Any, cache: _data.SummaryCache) -> dict[str, Any]:
    after = _opt(request, "after")
    if after is not None:
        try:
            _data.parse_after(after)
        except ValueError:
            raise InputError(f"after must be an item index (or index.epoch), got {after!r}", field="after") from None
    limit = min(max(_int(request, "limit", _data.PAGE_SIZE) or 1, 1), 1000)
    field = _opt(request, "field")
    return _data.run_data(store, run_id, after=after, limit=limit, status=_opt(request, "status"), field=field,
                          value=request.query_params.get("value", "") if field else None,
                          search=_opt(request, "q"), by=request.query_params.getlist("by"), prices=prices,
                          cache=cache)


def create_app(store_path: str | Path, token: str | None = None, prices: Any = None,
               allowed_hosts: list[str] | None = None) -> Any:
    """The viewer as a Starlette app over the store at ``store_path``, opened read-only for
    each request. With ``token`` every request must carry it (``Authorization: Bearer``,
    ``?token=`` or the cookie the first accepted request sets); only GET is routed. With
    ``allowed_hosts`` a request naming another Host is refused (400): a web page that
    rebinds its own name to 127.0.0.1 cannot read the viewer."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import HTMLResponse, Response
    from starlette.routing import Route

    from ..decide import load_prices

    prices = prices or load_prices()
    store_path = Path(store_path)

    def view(fetch: Callable[..., dict[str, Any] | None], render: Callable[[dict[str, Any]], str],
             key: str | None = None) -> Callable[[Any], Any]:
        def endpoint(request: Any) -> Any:
            params = dict(request.path_params)
            as_json = request.query_params.get("format") == "json" or request.url.path.endswith(".json")
            if key:
                params[key], _ = _strip_json(params[key])
            try:
                store = Store.open_readonly(store_path)
                try:
                    data = fetch(store, request, **params)
                finally:
                    store.conn.close()
            except (NotFoundError, InputError, GradeloopError) as exc:
                code = 404 if isinstance(exc, NotFoundError) else 400
                if as_json:
                    return _json_response({"error": {"message": str(exc)}}, code)
                return HTMLResponse(_render.page("gradeloop: error", f"<h1>{code}</h1><p>{_render.esc(exc)}</p>"), code)
            if data is None:
                return _json_response({"error": {"message": "not found"}}, 404) if as_json else \
                    HTMLResponse(_render.page("gradeloop: not found", "<h1>404</h1>"), 404)
            return _json_response(data) if as_json else HTMLResponse(render(data))
        return endpoint

    def assets(request: Any) -> Any:
        try:
            js = plotly_js()
        except InputError:  # the pages still work, without plots
            return Response(f"console.error({json.dumps(_INSTALL_HINT)});", media_type="application/javascript")
        return Response(js, media_type="application/javascript", headers={"Cache-Control": "public, max-age=86400"})

    cache = _data.SummaryCache()
    evals = view(lambda s, r: _data.evals_data(s, prices, cache=cache), _render.evals_html)
    run = view(lambda s, r, run_id: _run_page(s, r, run_id, prices, cache), _render.run_html, "run_id")
    progress = view(lambda s, r, run_id: _data.progress_data(s, run_id, prices), _render.evals_html)
    item = view(lambda s, r, run_id, index: _data.item_data(s, run_id, _item_index(index), _int(r, "epoch", 0) or 0),
                _render.item_html, "index")
    compare = view(lambda s, r: _compare.compare_data(s, r.query_params.getlist("run"), prices=prices),
                   _render.compare_html)
    jobs = view(lambda s, r: _data.jobs_data(s), _render.jobs_html)
    job = view(lambda s, r, job_id: _data.job_data(s, job_id), _render.job_html, "job_id")
    routes = [Route(path, fn, methods=["GET"]) for path, fn in (
        ("/", evals), ("/index.json", evals), ("/runs/{run_id}/progress.json", progress),
        ("/runs/{run_id}/items/{index}", item), ("/runs/{run_id}", run), ("/compare", compare),
        ("/compare.json", compare), ("/jobs", jobs), ("/jobs.json", jobs), ("/jobs/{job_id}", job),
        ("/assets/plotly.js", assets))]
    middleware = [Middleware(_TokenGate, token=token)] if token else []
    if allowed_hosts:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        middleware.insert(0, Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    return Starlette(routes=routes, middleware=middleware)


def _item_index(raw: str) -> int:
    raw, _ = _strip_json(raw)
    try:
        return int(raw)
    except ValueError:
        raise InputError(f"an item index is a whole number, got {raw!r}", field="index") from None


class _TokenGate:
    """ASGI middleware: 401 unless the request carries the token (compared in constant time);
    a request that gave it by header or query gets it back as an HttpOnly cookie, so links and
    the progress poll need not repeat it."""

    def __init__(self, app: Any, token: str) -> None:
        self.app, self.token = app, token.encode()

    def _ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from starlette.requests import Request
        from starlette.responses import PlainTextResponse

        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        auth = request.headers.get("authorization", "")
        bearer = auth[7:] if auth.lower().startswith("bearer ") else None
        offered = bearer or request.query_params.get("token")
        if not (self._ok(offered) or self._ok(request.cookies.get(COOKIE))):
            response = PlainTextResponse("401: this viewer needs its token (?token=… or Authorization: Bearer …)",
                                         status_code=401, headers={"WWW-Authenticate": "Bearer"})
            return await response(scope, receive, send)
        if not self._ok(offered):
            return await self.app(scope, receive, send)
        cookie = f"{COOKIE}={self.token.decode()}; HttpOnly; SameSite=Strict; Path=/"

        async def send_with_cookie(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"set-cookie", cookie.encode()))
            await send(message)

        await self.app(scope, receive, send_with_cookie)
