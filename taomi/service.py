"""The HTTP service (FastAPI): planning queries, validated, never a 500 for bad input.

DuckDB lets one process hold the file read-write and then refuses every other open, read-only
included. So the service never keeps a connection: it opens read-only for a moment (short wait),
caches what it read (fits, calibrations) for a few seconds, and when a pipeline run holds the
lock it answers from the cache, saying the figures may be stale; with nothing cached it answers
503 with Retry-After rather than blocking the writer.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from taomi import __version__
from taomi.output import error_text

CACHE_S = float(os.environ.get("TAOMI_CACHE_S", "5"))  # seconds a read of fits/calibrations is reused
LOCK_WAIT_S = 0.2
CACHE_ENTRIES = 512


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - no affinity API (macOS, Windows)
        return max(1, os.cpu_count() or 1)


# Bounded work per request: a data-limited plan (`unique_tokens`) searches once per bootstrap law
# for its CIs. The service computes at most PLAN_CI_SAMPLES of them and stops once the request's
# thread has spent PLAN_CPU_S CPU seconds on them (the answer says how many it used); at most
# PLAN_SLOTS such plans run at once, and a request that waits PLAN_QUEUE_S for a slot gets 503
# with Retry-After. Other requests never wait for a slot. Answers that need no database are
# cached (PLAN_CACHE_ENTRIES, least recently used first out): a repeated request costs nothing.
PLAN_CPU_S = float(os.environ.get("TAOMI_PLAN_CPU_S", "0.5"))
PLAN_CI_SAMPLES = int(os.environ.get("TAOMI_PLAN_CI_SAMPLES", "40"))
PLAN_SLOTS = int(os.environ.get("TAOMI_PLAN_SLOTS", str(_cores())))
PLAN_QUEUE_S = float(os.environ.get("TAOMI_PLAN_QUEUE_S", "5"))
PLAN_CACHE_ENTRIES = 1024


class LRU:
    """A small thread-safe least-recently-used cache."""

    def __init__(self, size: int):
        self.size, self._d, self._lock = size, OrderedDict(), threading.Lock()

    def get(self, key: str):
        with self._lock:
            if key in self._d:
                self._d.move_to_end(key)
                return self._d[key]
        return None

    def put(self, key: str, value) -> None:
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self.size:
                self._d.popitem(last=False)


class Busy(Exception):
    """No computation slot freed within PLAN_QUEUE_S: answered 503 with Retry-After."""

Pos = Annotated[float, Field(gt=0, le=1e35, allow_inf_nan=False)]
Frac = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=1, le=10_000_000)]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Speed(Strict):
    """How fast the GPUs train, as papers state it (one of mfu, hfu, achieved_tflops), shared by
    /plan and /estimate/time."""

    gpus: Count | None = None
    gpu: Name | None = Field(None, description="GPU type, e.g. h100-sxm")
    peak_tflops: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)] | None = None
    mfu: Frac | None = None
    hfu: Frac | None = Field(None, description="Hardware FLOPs utilisation, instead of mfu")
    achieved_tflops: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)] | None = Field(
        None, description="Hardware TFLOP/s per GPU as Megatron reports it, instead of mfu")
    recompute: Annotated[str, Field(pattern="^(none|selective|full)$")] = "none"
    hfu_ratio: Annotated[float, Field(ge=1, le=4, allow_inf_nan=False)] | None = None
    goodput: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 1.0
    precision: Annotated[str, Field(pattern="^(bf16|fp8)$")] = "bf16"
    seq: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    hidden: Annotated[int, Field(ge=1, le=10_000_000)] | None = None


class PlanBody(Speed):
    flops: Pos | None = Field(None, description="Compute budget in FLOPs")
    days: Annotated[float, Field(gt=0, le=36500, allow_inf_nan=False)] | None = None
    law: Name | None = None
    fit: Name | None = None
    unique_tokens: Pos | None = None
    corpus: Name | None = Field(None, description="Plan with this curated corpus's unique tokens (stored counts)")
    target_loss: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)] | None = None
    params: Annotated[float, Field(gt=0, le=1e30, allow_inf_nan=False)] | None = Field(
        None, description="Inverse: compute-optimal tokens for this model size")
    tokens: Annotated[float, Field(gt=0, le=1e30, allow_inf_nan=False)] | None = Field(
        None, description="Inverse: compute-optimal model size for these tokens")
    kaplan_allocation: Annotated[str, Field(pattern="^(frontier|eq1\\.5)$")] | None = Field(
        None, description="Kaplan law only: the published frontier (default) or the eq. 1.5 optimum")
    experiments: bool = False
    inference_tokens: Annotated[float, Field(ge=0, le=1e30, allow_inf_nan=False)] | None = Field(
        None, description="With target_loss: tokens the model will serve (Sardana et al. 2023)")
    vocab: Annotated[int, Field(ge=0, le=10_000_000)] | None = None


class TimeRequest(Speed):
    params: Pos
    tokens: Pos
    gpus: Count


class MemoryRequest(Strict):
    layers: Annotated[int, Field(ge=1, le=10_000)]
    hidden: Annotated[int, Field(ge=1, le=1_000_000)]
    heads: Annotated[int, Field(ge=1, le=10_000)]
    kv_heads: Annotated[int, Field(ge=1, le=10_000)] | None = None
    seq: Annotated[int, Field(ge=1, le=100_000_000)]
    batch: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    recompute: Annotated[str, Field(pattern="^(none|selective|full)$")] = "none"
    tp: Annotated[int, Field(ge=1, le=4096)] = 1
    generate: Annotated[int, Field(ge=0, le=100_000_000)] = 0
    prompt: Annotated[int, Field(ge=0, le=100_000_000)] | None = None
    params: Pos | None = None
    vocab: Annotated[int, Field(ge=0, le=100_000_000)] = 0
    ffn: Annotated[int, Field(ge=1, le=100_000_000)] | None = None
    mlp: Annotated[str, Field(pattern="^(gelu|swiglu)$")] = "gelu"
    tied_embeddings: bool = True
    precision: Annotated[str, Field(pattern="^(fp32|tf32|bf16|fp16|fp8|int8|int4)$")] = "bf16"
    kv_precision: Annotated[str, Field(pattern="^(fp32|tf32|bf16|fp16|fp8|int8|int4)$")] | None = None
    optimizer: Annotated[str, Field(pattern="^(adam|adamw|adam8bit|sgd-momentum|sgd)$")] = "adam"
    zero: Annotated[int, Field(ge=0, le=3)] = 0
    dp: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    paged_block: Annotated[int, Field(ge=0, le=4096)] = 0
    inference: bool = False
    kv_lora_rank: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    rope_head_dim: Annotated[int, Field(ge=0, le=1_000_000)] = 0


MAX_BODY_BYTES = int(os.environ.get("TAOMI_MAX_BODY_BYTES", str(64 << 10)))  # a plan request is < 1 KB


def _safe(value: Any) -> Any:
    """Make a value JSON-safe for an error body: NaN/inf and odd objects become strings, a lone
    surrogate (valid JSON escape, invalid Unicode) is shown escaped, long input is cut."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value[:200].encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return _safe(repr(value))


def json_safe(value: Any) -> Any:
    """Every string of a response made encodable (see `_safe`), recursively."""
    if isinstance(value, dict):
        return {json_safe(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def all_finite(value: Any) -> bool:
    """No NaN or infinity anywhere in a result (an overflowing input must be a 422, not a 500)."""
    if isinstance(value, dict):
        return all(all_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(all_finite(v) for v in value)
    return not isinstance(value, float) or math.isfinite(value)


class SafeJSONResponse(JSONResponse):
    """JSON that can always be encoded: a response never fails after the handler succeeded."""

    def render(self, content: Any) -> bytes:
        return super().render(json_safe(content))


class BodyLimit:
    """Pure ASGI middleware: a body over `limit` bytes is answered 413 before the app parses
    anything: at once by its Content-Length, or, when chunked, as soon as the bytes read pass the
    limit. At most `limit` bytes are ever held, so parsing stays trivially cheap."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await self._too_large(send)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            if len(body) > self.limit:
                return await self._too_large(send)
            more = message.get("more_body", False)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send):
        body = json.dumps({"detail": [{"field": "body", "message": f"request body larger than {self.limit} bytes"}]}
                          ).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class WarehouseReader:
    """Short read-only opens with a small cache; never holds the DuckDB lock."""

    def __init__(self, db: str | None):
        self.db = db
        self._cache: OrderedDict[str, tuple[float, Any]] = OrderedDict()  # LRU, CACHE_ENTRIES at most
        self._lock = threading.Lock()

    def read(self, key: str, fn):
        """(value, stale): fresh when the file could be opened, else the cached value."""
        from warehouse.db import WarehouseBusy, connect, db_path

        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit and now - hit[0] < CACHE_S:
            return hit[1], False
        path = db_path(self.db)
        if not path.exists():
            return fn(None), False
        try:
            con = connect(path, read_only=True, wait_s=LOCK_WAIT_S)
        except WarehouseBusy:
            if hit:
                return hit[1], True
            raise
        try:
            value = fn(con)
        finally:
            con.close()
        with self._lock:
            self._cache[key] = (now, value)
            self._cache.move_to_end(key)
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return value, False


def create_app(db: str | None = None) -> FastAPI:
    from flows.plan_task import answer, needs_database
    from scaling.compute import MemoryQuery, memory, training_time
    from scaling.laws import PUBLISHED
    from scaling.planning import Effort, PlanRequest, peak_of
    from warehouse.db import WarehouseBusy, WarehouseError
    from warehouse.scaling_store import list_fits

    app = FastAPI(title="Taomi", version=__version__, default_response_class=SafeJSONResponse,
                  docs_url=None, redoc_url=None,
                  description="Compute-optimal planning, training time and memory estimates.")
    app.add_middleware(BodyLimit)
    _offline_docs(app)
    reader = WarehouseReader(db)
    slots = threading.BoundedSemaphore(PLAN_SLOTS)
    answers = LRU(PLAN_CACHE_ENTRIES)

    def bounded(req: PlanRequest, con) -> dict:
        """`answer` with the service's effort bound; a data-limited plan first takes a slot."""
        if req.unique_tokens is None and req.corpus is None:
            return answer(req, con, Effort(ci_samples=PLAN_CI_SAMPLES, cpu_s=PLAN_CPU_S))
        if not slots.acquire(timeout=PLAN_QUEUE_S):
            raise Busy()
        try:
            return answer(req, con, Effort(ci_samples=PLAN_CI_SAMPLES, cpu_s=PLAN_CPU_S))
        finally:
            slots.release()

    @app.exception_handler(Busy)
    async def on_full(request: Request, exc: Busy):
        return SafeJSONResponse(status_code=503, headers={"Retry-After": "2"},
                                content={"detail": f"{PLAN_SLOTS} data-limited plans are being computed and none "
                                                   f"finished within {PLAN_QUEUE_S:g} s; retry shortly"})

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError):
        errors = [{"field": "body" if e.get("type") == "json_invalid"
                   else ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body",
                   "message": e.get("msg", "invalid"), "type": e.get("type"), "input": _safe(e.get("input"))}
                  for e in exc.errors()]
        return SafeJSONResponse(status_code=422, content={"detail": errors})

    @app.exception_handler(WarehouseBusy)
    async def on_busy(request: Request, exc: WarehouseBusy):
        return SafeJSONResponse(status_code=503, headers={"Retry-After": "2"},
                            content={"detail": "the database is held by a pipeline run; retry shortly"})

    @app.exception_handler(WarehouseError)
    async def on_unusable(request: Request, exc: WarehouseError):
        # the server's --db is not a usable warehouse (foreign, older schema...): not the client's fault
        return SafeJSONResponse(status_code=503, headers={"Retry-After": "60"}, content={"detail": str(exc)})

    def bad(message: str, status: int = 422) -> JSONResponse:
        return SafeJSONResponse(status_code=status, content={"detail": [{"field": "body", "message": message}]})

    def finite(result: dict):
        return result if all_finite(result) else bad("the inputs overflow the result (a value too small or "
                                                     "too large to compute); use realistic magnitudes")

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "version": __version__}

    @app.get("/laws")
    def laws() -> list[dict]:
        return [p.as_dict() for p in PUBLISHED.values()]

    @app.get("/fits")
    def fits():
        rows, stale = reader.read("fits", lambda con: list_fits(con) if con is not None else [])
        body = [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items() if k != "samples"}
                for r in rows]
        return SafeJSONResponse({"fits": body, "stale": stale},
                            headers={"X-Taomi-Stale": str(stale).lower()})

    @app.post("/plan")
    def plan(body: PlanBody):
        try:
            req = PlanRequest(**body.model_dump())
            key = "plan:" + json.dumps(req.as_dict(), sort_keys=True)
            if needs_database(req):  # the same `answer` as the CLI, over a brief read-only open
                out, stale = reader.read(key, lambda con: bounded(req, con))
            else:
                out, stale = answers.get(key), False
                if out is None:
                    out = bounded(req, None)
                    answers.put(key, out)
            return finite({**out, "stale": stale})
        except KeyError as exc:  # unknown law or GPU name (KeyError is a LookupError: catch it first)
            return bad(error_text(exc))
        except LookupError as exc:
            return bad(error_text(exc), 404)
        except (ValueError, ArithmeticError) as exc:
            return bad(error_text(exc))

    @app.post("/estimate/time")
    def est_time(req: TimeRequest):
        try:
            peak = peak_of(req.gpu, req.peak_tflops, req.precision, needed=req.achieved_tflops is None)[0]
            return finite(training_time(req.params, req.tokens, req.gpus, peak, req.mfu, req.recompute, hfu=req.hfu,
                                        achieved_tflops=req.achieved_tflops, goodput=req.goodput, seq=req.seq,
                                        hidden=req.hidden, hfu_ratio=req.hfu_ratio))
        except (KeyError, ValueError, ArithmeticError) as exc:
            return bad(error_text(exc))

    @app.post("/estimate/memory")
    def est_memory(req: MemoryRequest):
        try:
            q = req.model_dump()
            q["train"] = not q.pop("inference")
            q["paged_block"] = q.pop("paged_block")
            out = memory(MemoryQuery(**q))
        except (ValueError, ArithmeticError) as exc:
            return bad(str(exc))
        return finite(out)

    return app


def _offline_docs(app: FastAPI) -> None:
    """/docs and /redoc from the Swagger UI and ReDoc files that ship inside the fastapi-offline
    wheel, so the pages work on a host with no internet (FastAPI's default loads a CDN)."""
    from pathlib import Path

    import fastapi_offline
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    static = Path(fastapi_offline.__file__).parent / "static"
    app.mount("/static-docs", StaticFiles(directory=static), name="static-docs")

    @app.get("/docs", include_in_schema=False)
    def docs():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} API",
                                   swagger_js_url="/static-docs/swagger-ui-bundle.js",
                                   swagger_css_url="/static-docs/swagger-ui.css",
                                   swagger_favicon_url="/static-docs/favicon.png")

    @app.get("/redoc", include_in_schema=False)
    def redoc():
        return get_redoc_html(openapi_url=app.openapi_url, title=f"{app.title} API",
                              redoc_js_url="/static-docs/redoc.standalone.js",
                              redoc_favicon_url="/static-docs/favicon.png", with_google_fonts=False)
